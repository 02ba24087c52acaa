/** Registry resource IDs: parsing, and resolution through a scripted Resource Manager. */
import { createServer, type Server } from 'node:http';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { afterEach, describe, expect, it } from 'vitest';
import {
  armScope,
  isNetworkRestricted,
  isResourceId,
  parseRegistryResourceId,
  resolveRegistry,
} from '../../../lib/azure/arm.js';

const SUB = '0b1f6471-1bf0-4dda-aec3-cb9272f09590';
const ID = `/subscriptions/${SUB}/resourceGroups/rg-images/providers/Microsoft.ContainerRegistry/registries/myregistry`;

describe('registry resource IDs', () => {
  it.each([
    [ID, { subscription: SUB, resourceGroup: 'rg-images', name: 'myregistry', id: ID }],
    [`${ID}/`, { name: 'myregistry', id: ID }],
    [
      ID.replace('/subscriptions/', '/SUBSCRIPTIONS/')
        .replace('resourceGroups', 'resourcegroups')
        .replace('Microsoft.ContainerRegistry', 'microsoft.containerregistry'),
      { name: 'myregistry', id: ID },
    ],
    [ID.replace(SUB, SUB.toUpperCase()), { subscription: SUB, id: ID }],
    [
      `/subscriptions/${SUB}/resourceGroups/My.Group_(1)-x/providers/Microsoft.ContainerRegistry/registries/Reg12345`,
      { resourceGroup: 'My.Group_(1)-x', name: 'Reg12345' },
    ],
  ])('parses %s', (input, expected) => {
    expect(isResourceId(input)).toBe(true);
    expect(parseRegistryResourceId(input)).toMatchObject(expected);
  });

  it.each([
    ['/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry'],
    [`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/myregistry`],
    [`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/my-registry`],
    [`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/abc`],
    [
      `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry/replications/x`,
    ],
    [`/subscriptions/${SUB}/resourceGroups/../providers/Microsoft.ContainerRegistry/registries/myregistry`],
    [`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry?x=1`],
    [`/subscriptions/${SUB}/resourceGroups/rg%2f/providers/Microsoft.ContainerRegistry/registries/myregistry`],
  ])('refuses %s', (input) => {
    expect(() => parseRegistryResourceId(input)).toThrow(
      /is not a container registry resource ID; expected \/subscriptions\/<subscription ID>\/resourceGroups\/<group>\/providers\/Microsoft\.ContainerRegistry\/registries\/<name>/,
    );
  });

  it('is only meant when it starts with /subscriptions/', () => {
    expect(isResourceId('myregistry.azurecr.io')).toBe(false);
  });

  it('asks Resource Manager tokens for its own audience', () => {
    expect(armScope('https://management.azure.com')).toBe('https://management.azure.com/.default');
    expect(armScope('https://management.usgovcloudapi.net/')).toBe('https://management.usgovcloudapi.net/.default');
  });
});

class Credential implements TokenCredential {
  readonly scopes: (string | string[])[] = [];
  async getToken(scopes: string | string[]): Promise<AccessToken> {
    this.scopes.push(scopes);
    return { token: 'arm-token', expiresOnTimestamp: Date.now() + 3_600_000 };
  }
}

describe('resolveRegistry', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  async function arm(status: number, body: unknown) {
    const seen: { url: string; authorization?: string; method?: string }[] = [];
    server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', authorization: req.headers.authorization, method: req.method });
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(text);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    return { endpoint: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen };
  }
  const options = (endpoint: string, credential = new Credential()) => ({
    credential,
    identity: "the app's system-assigned managed identity",
    armEndpoint: endpoint,
    http: { retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } },
  });

  it('GETs the resource with api-version 2023-07-01 and a Resource Manager token; returns login server and network settings', async () => {
    const { endpoint, seen } = await arm(200, {
      id: ID,
      properties: {
        loginServer: 'MyRegistry.azurecr.io',
        publicNetworkAccess: 'Disabled',
        networkRuleBypassOptions: 'AzureServices',
        networkRuleSet: { defaultAction: 'Deny', ipRules: [] },
      },
    });
    const credential = new Credential();
    const resolved = await resolveRegistry(ID.toLowerCase(), options(`${endpoint}/`, credential));
    expect(seen).toEqual([{ method: 'GET', url: `${ID}?api-version=2023-07-01`, authorization: 'Bearer arm-token' }]);
    expect(credential.scopes).toEqual([`${endpoint}/.default`]);
    expect(resolved).toMatchObject({
      loginServer: 'myregistry.azurecr.io',
      publicNetworkAccess: 'Disabled',
      networkRuleBypassOptions: 'AzureServices',
      networkDefaultAction: 'Deny',
      name: 'myregistry',
    });
    expect(isNetworkRestricted(resolved)).toBe(true);
  });

  it('404: not found, naming what to check', async () => {
    const { endpoint } = await arm(404, {
      error: { code: 'ResourceNotFound', message: 'The Resource was not found.' },
    });
    await expect(resolveRegistry(ID, options(endpoint))).rejects.toMatchObject({
      code: 'REGISTRY_RESOURCE_NOT_FOUND',
      temporary: false,
      message: `registry ${ID} was not found (Azure Resource Manager answered 404 ResourceNotFound: The Resource was not found.): check the subscription, resource group and registry name`,
    });
  });

  it('403: the identity may not read it, naming the role', async () => {
    const { endpoint } = await arm(403, { error: { code: 'AuthorizationFailed', message: 'no read' } });
    await expect(resolveRegistry(ID, options(endpoint))).rejects.toMatchObject({
      code: 'REGISTRY_RESOURCE_FORBIDDEN',
      message: `the app's system-assigned managed identity may not read registry ${ID} (Azure Resource Manager answered 403 AuthorizationFailed: no read): assign it the Reader role on the registry (Microsoft.ContainerRegistry/registries/read), besides AcrPull for the images`,
    });
  });

  it('401: another tenant cannot be given by resource ID; 500: temporary; no login server: refused', async () => {
    let r = await arm(401, { error: { code: 'InvalidAuthenticationTokenTenant', message: 'wrong issuer' } });
    await expect(resolveRegistry(ID, options(r.endpoint))).rejects.toMatchObject({
      code: 'ARM_UNAUTHORIZED',
      message: expect.stringContaining('a registry in another tenant cannot be given by resource ID'),
    });
    await new Promise<void>((res) => server!.close(() => res()));
    r = await arm(500, { error: { code: 'InternalServerError', message: 'oops' } });
    await expect(resolveRegistry(ID, options(r.endpoint))).rejects.toMatchObject({
      code: 'AZURE_AUTH_FAILED',
      temporary: true,
    });
    await new Promise<void>((res) => server!.close(() => res()));
    r = await arm(200, { properties: { loginServer: 'https://evil/' } });
    await expect(resolveRegistry(ID, options(r.endpoint))).rejects.toMatchObject({
      code: 'AZURE_AUTH_FAILED',
      message: expect.stringContaining('without a usable loginServer'),
    });
  });
});
