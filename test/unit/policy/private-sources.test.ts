/**
 * Private sources under virtual network integration (lib/policy/private-sources.ts): a registry bound by ARM
 * resource ID in PRIVATE_SOURCE_REGISTRIES may resolve to private-endpoint addresses, its login server and data
 * endpoints only, for requests that name it by that resource ID; everything else keeps the address guard.
 *
 * No connection is made to a private address here (tests reach 127.0.0.1 only): the lookups are stubs, and the
 * dispatcher tests show which vetting applies by what it refuses before connecting.
 */
import { describe, expect, it } from 'vitest';
import type { ResolvedRegistry } from '../../../lib/azure/arm.js';
import { ConfigError, SETTINGS, loadConfig } from '../../../lib/config.js';
import { validateImportRequest } from '../../../lib/request/request.js';
import {
  checkBoundSource,
  isBound,
  isPrivateEndpointAddress,
  parsePrivateSources,
  privateEndpointHosts,
  vetPrivateEndpointAddresses,
} from '../../../lib/policy/private-sources.js';
import type { Lookup } from '../../../lib/policy/sources.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { Registries } from '../../../lib/sides/registries.js';
import type { Dispatcher } from 'undici';

const SUB = '0b1f6471-1bf0-4dda-aec3-cb9272f09590';
const ID = `/subscriptions/${SUB}/resourceGroups/rg-net/providers/Microsoft.ContainerRegistry/registries/privreg`;
const OTHER = `/subscriptions/${SUB}/resourceGroups/rg-net/providers/Microsoft.ContainerRegistry/registries/otherreg`;

/** DNS as a virtual network with the privatelink.azurecr.io zone would answer it. */
const vnetDns =
  (answers: Record<string, string[]>): Lookup =>
  async (host) => {
    const a = answers[host];
    if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return a;
  };

describe('private-endpoint addresses', () => {
  it.each(['10.0.1.4', '172.16.0.9', '172.31.255.1', '192.168.10.2', '100.64.0.5', '::ffff:10.0.1.4'])(
    '%s may be a private endpoint',
    (a) => {
      expect(isPrivateEndpointAddress(a)).toBe(true);
    },
  );
  it.each([
    '127.0.0.1',
    '169.254.169.254',
    '168.63.129.16',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    'fe80::1',
    'fd00::1',
    '8.8.8.8',
    '::ffff:127.0.0.1',
    '172.32.0.1',
  ])('%s may not', (a) => expect(isPrivateEndpointAddress(a)).toBe(false));
});

describe('PRIVATE_SOURCE_REGISTRIES', () => {
  it('is an app setting of resource IDs; a malformed entry is a configuration error, never ignored', () => {
    expect(SETTINGS.find((s) => s.name === 'PRIVATE_SOURCE_REGISTRIES')?.scope).toBe('app');
    expect(loadConfig({}).privateSourceRegistries).toEqual([]);
    expect([
      ...parsePrivateSources(
        loadConfig({
          PRIVATE_SOURCE_REGISTRIES: ` ${ID} , ${OTHER.toUpperCase().replace('/SUBSCRIPTIONS/', '/subscriptions/')}`,
        }).privateSourceRegistries,
      ),
    ]).toEqual([ID.toLowerCase(), OTHER.toLowerCase()]);
    expect(() => parsePrivateSources(['privreg.azurecr.io'])).toThrow(ConfigError);
    expect(() => parsePrivateSources(['*'])).toThrow(
      /setting PRIVATE_SOURCE_REGISTRIES: .* is not a container registry resource ID/,
    );
  });

  it('binds exactly the listed registries', () => {
    const config = loadConfig({ PRIVATE_SOURCE_REGISTRIES: ID });
    expect(isBound(config, ID)).toBe(true);
    expect(isBound(config, ID.toUpperCase().replace('/SUBSCRIPTIONS/', '/subscriptions/'))).toBe(true);
    expect(isBound(config, OTHER)).toBe(false);
    expect(isBound(config, undefined)).toBe(false);
    expect(isBound(loadConfig({}), ID)).toBe(false);
  });
});

describe('the hosts a bound registry may reach privately', () => {
  const hosts = privateEndpointHosts(ID, 'privreg.azurecr.io');
  it.each([
    'privreg.azurecr.io',
    'PRIVREG.azurecr.io',
    'privreg.westeurope.data.azurecr.io',
    'privreg.eastus2.data.azurecr.io',
  ])('%s: yes', (h) => {
    expect(hosts(h)).toBe(true);
  });
  it.each([
    'otherreg.azurecr.io',
    'xprivreg.azurecr.io',
    'privreg.westeurope.data.azurecr.io.evil.test',
    'privreg.a.b.data.azurecr.io',
    'otherreg.westeurope.data.azurecr.io',
    'privreg.blob.core.windows.net',
    'westeurope.data.azurecr.io',
    'privreg.azurecr.io.evil.test',
  ])('%s: no', (h) => {
    expect(hosts(h)).toBe(false);
  });
  it("a sovereign cloud's domain comes from the login server Resource Manager reported", () => {
    const gov = privateEndpointHosts(ID, 'privreg.azurecr.us');
    expect(gov('privreg.usgovvirginia.data.azurecr.us')).toBe(true);
    expect(gov('privreg.usgovvirginia.data.azurecr.io')).toBe(false);
  });
  it("a login server that is not the resource's own name binds nothing", () => {
    const odd = privateEndpointHosts(ID, 'registry.internal.example');
    expect(odd('registry.internal.example')).toBe(false);
  });
});

describe('vetting a bound host', () => {
  it('allows public and private-endpoint addresses, refuses any other non-public one, fails closed', async () => {
    await expect(
      vetPrivateEndpointAddresses('privreg.azurecr.io', vnetDns({ 'privreg.azurecr.io': ['10.0.1.4'] })),
    ).resolves.toEqual(['10.0.1.4']);
    await expect(
      vetPrivateEndpointAddresses('privreg.azurecr.io', vnetDns({ 'privreg.azurecr.io': ['20.50.1.2'] })),
    ).resolves.toEqual(['20.50.1.2']);
    for (const bad of ['169.254.169.254', '168.63.129.16', '127.0.0.1', 'fe80::1']) {
      await expect(
        vetPrivateEndpointAddresses('privreg.azurecr.io', vnetDns({ 'privreg.azurecr.io': ['10.0.1.4', bad] })),
        bad,
      ).rejects.toMatchObject({
        code: 'PRIVATE_ADDRESS',
        message: expect.stringContaining(`resolves to ${bad}, which is neither public nor a private-endpoint address`),
      });
    }
    await expect(vetPrivateEndpointAddresses('nowhere.azurecr.io', vnetDns({}))).rejects.toMatchObject({
      code: 'SOURCE_UNRESOLVABLE',
    });
  });

  it("still needs ALLOWED_SOURCES to match; a login server not of the resource's name gets the usual guard", async () => {
    const dns = vnetDns({ 'privreg.azurecr.io': ['10.0.1.4'], 'odd.internal.example': ['10.0.1.5'] });
    await expect(checkBoundSource('privreg.azurecr.io', ID, ['*'], dns)).resolves.toBeUndefined();
    await expect(checkBoundSource('privreg.azurecr.io', ID, ['*.example.com'], dns)).rejects.toMatchObject({
      code: 'SOURCE_NOT_ALLOWED',
    });
    await expect(checkBoundSource('odd.internal.example', ID, ['*'], dns)).rejects.toMatchObject({
      code: 'PRIVATE_ADDRESS',
      message: expect.stringContaining('list it explicitly in ALLOWED_SOURCES'),
    });
  });
});

describe('import requests with virtual network integration', () => {
  const dns = vnetDns({
    'privreg.azurecr.io': ['10.0.1.4'],
    'otherreg.azurecr.io': ['10.0.1.5'],
    'trapreg.azurecr.io': ['169.254.169.254'],
  });
  const resolvedAs = (id: string, loginServer: string): ResolvedRegistry => ({
    id,
    subscription: SUB,
    resourceGroup: 'rg-net',
    name: id.split('/').pop()!,
    loginServer,
    publicNetworkAccess: 'Disabled',
  });
  const validate = (env: Record<string, string>, body: unknown, loginServer?: string) =>
    validateImportRequest(body, {
      config: loadConfig({ TARGET_REGISTRY: 'target.azurecr.io', ALLOWED_SOURCES: '*', ...env }),
      origin: 'http',
      lookup: dns,
      resolveRegistry: async (id) => resolvedAs(id, loginServer ?? `${id.split('/').pop()!.toLowerCase()}.azurecr.io`),
    });

  it('a registry named by a bound resource ID is accepted at its private address', async () => {
    const v = await validate({ PRIVATE_SOURCE_REGISTRIES: ID }, { source: 'team/app:1.0', registry: ID });
    expect(v).toMatchObject({ sourceRegistry: 'privreg.azurecr.io', registryResourceId: ID });
  });

  it('without the binding, by login server, or for another registry: refused as before (PRIVATE_ADDRESS, field source)', async () => {
    await expect(validate({}, { source: 'team/app:1.0', registry: ID })).rejects.toMatchObject({
      status: 400,
      code: 'PRIVATE_ADDRESS',
      target: 'source',
    });
    await expect(
      validate({ PRIVATE_SOURCE_REGISTRIES: ID }, { source: 'privreg.azurecr.io/team/app:1.0' }),
    ).rejects.toMatchObject({ code: 'PRIVATE_ADDRESS' });
    await expect(
      validate({ PRIVATE_SOURCE_REGISTRIES: ID }, { source: 'team/app:1.0', registry: OTHER }),
    ).rejects.toMatchObject({ code: 'PRIVATE_ADDRESS' });
  });

  it('a bound registry whose name resolves to the metadata endpoint is still refused', async () => {
    const trap = `/subscriptions/${SUB}/resourceGroups/rg-net/providers/Microsoft.ContainerRegistry/registries/trapreg`;
    await expect(
      validate({ PRIVATE_SOURCE_REGISTRIES: trap }, { source: 'team/app:1.0', registry: trap }),
    ).rejects.toMatchObject({ code: 'PRIVATE_ADDRESS' });
  });
});

describe("the worker's connections (guarded dispatcher)", () => {
  // Every lookup answer here is refused before any connection: the error tells which vetting ran.
  const dns = vnetDns({
    'privreg.azurecr.io': ['169.254.169.254'],
    'privreg.westeurope.data.azurecr.io': ['168.63.129.16'],
    'elsewhere.test': ['10.0.0.9'],
  });
  const retry = { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 };
  const registries = new Registries({
    config: loadConfig({ PRIVATE_SOURCE_REGISTRIES: ID, ALLOWED_SOURCES: '*' }),
    guardSources: true,
    lookup: dns,
    retry,
  });
  /** The same connections as the client's, to another host (a blob redirect, a token realm). */
  const via = (client: RegistryClient, host: string) =>
    new RegistryClient({
      registry: host,
      retry,
      dispatcher: (client as unknown as { transport: { dispatcher: Dispatcher } }).transport.dispatcher,
    });

  it('a source named by a bound resource ID vets its login server and data endpoints as private endpoints, other hosts as usual', async () => {
    const bound = registries.source('privreg.azurecr.io', undefined, ID).client;
    await expect(bound.ping()).rejects.toMatchObject({
      code: 'PRIVATE_ADDRESS',
      message: expect.stringMatching(
        /resolves to 169\.254\.169\.254, which is neither public nor a private-endpoint address/,
      ),
    });
    await expect(via(bound, 'privreg.westeurope.data.azurecr.io').ping()).rejects.toMatchObject({
      message: expect.stringMatching(/resolves to 168\.63\.129\.16, which is neither public/),
    });
    await expect(via(bound, 'elsewhere.test').ping()).rejects.toMatchObject({
      message: expect.stringMatching(/non-public address 10\.0\.0\.9; list it explicitly in ALLOWED_SOURCES/),
    });
  });

  it('the same host without the resource ID, or with one not bound, gets the usual guard', async () => {
    await expect(registries.source('privreg.azurecr.io').client.ping()).rejects.toMatchObject({
      message: expect.stringMatching(/non-public address 169\.254\.169\.254; list it explicitly/),
    });
    await expect(registries.source('privreg.azurecr.io', undefined, OTHER).client.ping()).rejects.toMatchObject({
      message: expect.stringMatching(/non-public address 169\.254\.169\.254; list it explicitly/),
    });
  });
});
