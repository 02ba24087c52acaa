/**
 * The real @azure/identity ManagedIdentityCredential against a local App Service managed-identity endpoint
 * (IDENTITY_ENDPOINT + IDENTITY_HEADER): the request it sends, the answer it accepts, its caching.
 * (MSAL keeps the managed-identity source per process: this file owns its endpoint.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StaticTokenCredential, appIdentity } from '../../../lib/azure/credentials.js';
import { ACR_AUDIENCE, startEntra, type RunningEntra } from '../../support/azure.js';

const USER_ASSIGNED = '6f6a8b57-6c37-4d8c-9a55-0a4b1a0c2d11';

describe('managed identity through the App Service protocol', () => {
  let entra: RunningEntra;
  const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };
  beforeAll(async () => {
    entra = await startEntra({ userAssigned: { [USER_ASSIGNED]: 'object-of-user-assigned' } });
    process.env.IDENTITY_ENDPOINT = entra.endpoint;
    process.env.IDENTITY_HEADER = entra.header;
  });
  afterAll(async () => {
    await entra?.stop();
    if (saved.endpoint === undefined) delete process.env.IDENTITY_ENDPOINT;
    else process.env.IDENTITY_ENDPOINT = saved.endpoint;
    if (saved.header === undefined) delete process.env.IDENTITY_HEADER;
    else process.env.IDENTITY_HEADER = saved.header;
  });

  it('user-assigned: GET ?api-version=2019-08-01&resource=<audience>&client_id=…, X-IDENTITY-HEADER; cached afterwards', async () => {
    const { credential, label } = appIdentity({ clientId: USER_ASSIGNED });
    expect(label).toBe(`the app's managed identity (client ID ${USER_ASSIGNED})`);
    const token = await credential.getToken(`${ACR_AUDIENCE}/.default`);
    const checked = entra.verify(token!.token);
    expect(checked.ok && checked.claims).toMatchObject({
      aud: ACR_AUDIENCE,
      oid: 'object-of-user-assigned',
      tid: entra.tenant,
    });
    expect(token!.expiresOnTimestamp).toBeGreaterThan(Date.now() + 3_000_000);
    expect(entra.requests).toEqual([
      {
        method: 'GET',
        path: '/msi/token',
        identityHeader: entra.header,
        status: 200,
        query: { 'api-version': '2019-08-01', resource: ACR_AUDIENCE, client_id: USER_ASSIGNED },
      },
    ]);
    await credential.getToken(`${ACR_AUDIENCE}/.default`);
    expect(entra.requests).toHaveLength(1);
    expect(appIdentity({ clientId: USER_ASSIGNED })).toBe(appIdentity({ clientId: USER_ASSIGNED }));
  });

  it('system-assigned: no client_id', async () => {
    const { credential, label } = appIdentity();
    expect(label).toBe("the app's system-assigned managed identity");
    await credential.getToken('https://management.azure.com/.default');
    expect(entra.requests.at(-1)!.query).toEqual({
      'api-version': '2019-08-01',
      resource: 'https://management.azure.com',
    });
    const checked = entra.verify((await credential.getToken('https://management.azure.com/.default'))!.token);
    expect(checked.ok && checked.claims.oid).toBe(entra.systemObjectId);
  });

  it("an unknown client ID fails with the endpoint's reason", async () => {
    await expect(
      appIdentity({ clientId: '00000000-0000-4000-8000-00000000dead' }).credential.getToken(`${ACR_AUDIENCE}/.default`),
    ).rejects.toThrow(/No User Assigned or Delegated Managed Identity found/);
  });
});

describe('StaticTokenCredential', () => {
  it('hands out an opaque token for an hour, a JWT until its exp', async () => {
    const now = () => 1_000_000;
    expect(await new StaticTokenCredential('opaque', now).getToken()).toEqual({
      token: 'opaque',
      expiresOnTimestamp: 1_000_000 + 3_600_000,
      tokenType: 'Bearer',
    });
    const jwt = `e30.${Buffer.from(JSON.stringify({ exp: 2000 })).toString('base64url')}.x`;
    expect((await new StaticTokenCredential(jwt, now).getToken()).expiresOnTimestamp).toBe(2_000_000);
    await expect(new StaticTokenCredential(jwt, () => 2_000_000).getToken()).rejects.toMatchObject({
      code: 'TOKEN_EXPIRED',
    });
  });
});
