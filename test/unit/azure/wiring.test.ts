/**
 * How the Azure paths are switched on: TARGET_AUTH and the Azure settings, a request naming its registry
 * by resource ID or carrying a password alone, and which authenticator a client then gets.
 */
import { describe, expect, it } from 'vitest';
import type { ResolvedRegistry } from '../../../lib/azure/arm.js';
import { AcrExchangeAuthenticator } from '../../../lib/azure/acr-exchange.js';
import { azureSettings, sourceAuth, targetIdentityAuth } from '../../../lib/azure/clients.js';
import { AzureError } from '../../../lib/azure/errors.js';
import { ConfigError, SETTINGS, loadConfig } from '../../../lib/config.js';
import { validateImportRequest } from '../../../lib/request/request.js';

const SUB = '0b1f6471-1bf0-4dda-aec3-cb9272f09590';
const ID = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/srcregistry`;

describe('settings', () => {
  it('TARGET_AUTH=managed-identity is accepted; it is the default for an ACR target when the app runs in Azure', () => {
    expect(loadConfig({ TARGET_AUTH: 'managed-identity' }).targetAuth).toBe('managed-identity');
    expect(
      loadConfig({ TARGET_REGISTRY: 'contoso.azurecr.io', IDENTITY_ENDPOINT: 'http://localhost:8081/msi/token' })
        .targetAuth,
    ).toBe('managed-identity');
    expect(loadConfig({ TARGET_REGISTRY: 'contoso.azurecr.us', WEBSITE_SITE_NAME: 'func-x' }).targetAuth).toBe(
      'managed-identity',
    );
    expect(loadConfig({ TARGET_REGISTRY: 'contoso.azurecr.io' }).targetAuth).toBe('anonymous');
    expect(loadConfig({ TARGET_REGISTRY: 'registry.example.com', WEBSITE_SITE_NAME: 'func-x' }).targetAuth).toBe(
      'anonymous',
    );
    expect(
      loadConfig({
        TARGET_REGISTRY: 'contoso.azurecr.io',
        WEBSITE_SITE_NAME: 'x',
        TARGET_USERNAME: 'u',
        TARGET_PASSWORD: 'p',
      }).targetAuth,
    ).toBe('basic');
  });

  it('ACR_AUDIENCE, ARM_ENDPOINT and AZURE_CLIENT_ID, with public-cloud defaults and checks', () => {
    expect(loadConfig({})).toMatchObject({
      acrAudience: 'https://containerregistry.azure.net',
      armEndpoint: 'https://management.azure.com',
      azureClientId: undefined,
    });
    expect(
      loadConfig({
        ACR_AUDIENCE: 'https://management.usgovcloudapi.net/',
        ARM_ENDPOINT: 'https://management.usgovcloudapi.net',
        AZURE_CLIENT_ID: ' abc ',
      }),
    ).toMatchObject({
      acrAudience: 'https://management.usgovcloudapi.net',
      armEndpoint: 'https://management.usgovcloudapi.net',
      azureClientId: 'abc',
    });
    expect(loadConfig({ ARM_ENDPOINT: 'http://127.0.0.1:8123' }).armEndpoint).toBe('http://127.0.0.1:8123');
    expect(() => loadConfig({ ARM_ENDPOINT: 'http://management.example.com' })).toThrow(ConfigError);
    expect(() => loadConfig({ ARM_ENDPOINT: 'management.azure.com' })).toThrow(
      /setting ARM_ENDPOINT: "management.azure.com" is not a URL/,
    );
    expect(() => loadConfig({ ACR_AUDIENCE: 'https://x/?a=1' })).toThrow(/setting ACR_AUDIENCE/);
    for (const name of ['ACR_AUDIENCE', 'ARM_ENDPOINT', 'AZURE_CLIENT_ID'])
      expect(SETTINGS.find((s) => s.name === name)?.scope).toBe('app');
  });
});

describe('which sign-in a client gets', () => {
  const settings = azureSettings(loadConfig({ AZURE_CLIENT_ID: 'client-1' }));
  it('target with managed identity: the exchange, as the user-assigned identity', () => {
    const auth = targetIdentityAuth(settings, 'contoso.azurecr.io', false);
    expect(auth.authenticator).toBeInstanceOf(AcrExchangeAuthenticator);
    expect(auth.context).toEqual({
      registry: 'contoso.azurecr.io',
      role: 'target',
      identity: "the app's managed identity (client ID client-1)",
    });
    expect(targetIdentityAuth(settings, 'contoso.azurecr.io', false).authenticator).toBe(auth.authenticator);
  });

  it('sources: resource ID → identity; password alone → that token; otherwise the registry challenge', () => {
    expect(sourceAuth(settings, { registry: 'src.azurecr.io', insecure: false, resourceId: ID })).toMatchObject({
      context: { role: 'source', resourceId: ID, identity: "the app's managed identity (client ID client-1)" },
    });
    const token = sourceAuth(settings, {
      registry: 'src.azurecr.io',
      insecure: false,
      credentials: { username: '', password: 'eyJ.x.y' },
    });
    expect(token.authenticator).toBeInstanceOf(AcrExchangeAuthenticator);
    expect(token.context).toMatchObject({ crossTenant: true, identity: 'the Entra ID token given as password' });
    const basic = sourceAuth(settings, {
      registry: 'src.azurecr.io',
      insecure: false,
      credentials: { username: 'u', password: 'p' },
      resourceId: ID,
    });
    expect(basic.authenticator).toBeUndefined();
    expect(basic.explain).toEqual({ access: false });
  });
});

describe('import requests', () => {
  const config = loadConfig({
    TARGET_REGISTRY: 'target.azurecr.io',
    CREDENTIAL_KEY: Buffer.alloc(32, 1).toString('base64'),
    ALLOWED_SOURCES: '*',
  });
  const lookup = async () => ['203.0.113.10'];
  const resolved = (over: Partial<ResolvedRegistry> = {}): ResolvedRegistry => ({
    id: ID,
    subscription: SUB,
    resourceGroup: 'rg',
    name: 'srcregistry',
    loginServer: 'srcregistry.azurecr.io',
    ...over,
  });
  const validate = (
    body: unknown,
    resolve: (id: string) => Promise<ResolvedRegistry> = async () => resolved(),
    origin: 'http' | 'queue' = 'http',
  ) => validateImportRequest(body, { config, origin, lookup, resolveRegistry: resolve });

  it('a registry given by resource ID resolves to its login server; source may omit the host', async () => {
    const seen: string[] = [];
    const v = await validate({ source: 'team/app:1.0', registry: ID }, async (id) => {
      seen.push(id);
      return resolved();
    });
    expect(seen).toEqual([ID]);
    expect(v).toMatchObject({
      source: 'srcregistry.azurecr.io/team/app:1.0',
      sourceRegistry: 'srcregistry.azurecr.io',
      registryResourceId: ID,
    });
    expect((await validate({ source: 'srcregistry.azurecr.io/team/app:1.0', registry: ID })).source).toBe(
      'srcregistry.azurecr.io/team/app:1.0',
    );
    await expect(validate({ source: 'other.azurecr.io/team/app:1.0', registry: ID })).rejects.toMatchObject({
      code: 'CONFLICTING_FIELDS',
      target: 'registry',
    });
  });

  it('resolution refusals name the field; temporary failures propagate', async () => {
    await expect(validate({ source: 'team/app:1', registry: '/subscriptions/nope' })).rejects.toMatchObject({
      status: 400,
      code: 'INVALID_RESOURCE_ID',
      target: 'registry',
    });
    await expect(
      validate({ source: 'team/app:1', registry: ID }, async () => {
        throw new AzureError('REGISTRY_RESOURCE_NOT_FOUND', 'registry … was not found');
      }),
    ).rejects.toMatchObject({ status: 400, code: 'REGISTRY_RESOURCE_NOT_FOUND', target: 'registry' });
    const busy = new AzureError('AZURE_AUTH_FAILED', 'Azure Resource Manager answered 503', true);
    await expect(
      validate({ source: 'team/app:1', registry: ID }, async () => {
        throw busy;
      }),
    ).rejects.toBe(busy);
  });

  it('a password alone is an Entra ID token (kept as credentials with an empty username); a username alone is refused', async () => {
    const v = await validate({ source: 'srcregistry.azurecr.io/team/app:1', password: 'eyJ.token.x' });
    expect(v.inlineCredentials).toEqual({ username: '', password: 'eyJ.token.x' });
    await expect(validate({ source: 'srcregistry.azurecr.io/team/app:1', username: 'u' })).rejects.toMatchObject({
      code: 'MISSING_FIELD',
      target: 'password',
    });
    await expect(
      validate({ source: 'srcregistry.azurecr.io/team/app:1', password: 'eyJ.token.x' }, undefined, 'queue'),
    ).rejects.toMatchObject({ code: 'SECRET_IN_QUEUE' });
  });

  it('cross-tenant (password alone) with a registry that Resource Manager reports closed is refused at once', async () => {
    const err = (await validate({ source: 'team/app:1', registry: ID, password: 'eyJ.token.x' }, async () =>
      resolved({ publicNetworkAccess: 'Disabled' }),
    ).catch((e: unknown) => e)) as { code: string; message: string; target: string };
    expect(err).toMatchObject({ code: 'CROSS_TENANT_NOT_SUPPORTED', target: 'registry' });
    expect(err.message).toMatch(
      /^cross-tenant import from a registry with public access disabled is not supported: registry srcregistry\.azurecr\.io/,
    );
    expect(err.message).not.toContain('eyJ.token.x');
    await expect(
      validate({ source: 'team/app:1', registry: ID, password: 'eyJ.token.x' }, async () =>
        resolved({ networkDefaultAction: 'Deny' }),
      ),
    ).rejects.toMatchObject({ code: 'CROSS_TENANT_NOT_SUPPORTED' });
    expect(
      (
        await validate({ source: 'team/app:1', registry: ID, password: 'eyJ.token.x' }, async () =>
          resolved({ publicNetworkAccess: 'Enabled' }),
        )
      ).registryResourceId,
    ).toBe(ID);
  });
});
