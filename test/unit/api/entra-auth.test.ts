/** AUTH_MODE=entra: the token checks (lib/api/entra-auth.ts) and the handler gate (lib/api/callers.ts), against a local OpenID issuer. */
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { exportSPKI, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guarded, httpAuthLevel } from '../../../lib/api/callers.js';
import { AuthorityError, CallerError, EntraValidator, type Access, type Caller } from '../../../lib/api/entra-auth.js';
import { callerAuthOf, ConfigError, loadConfig } from '../../../lib/config.js';
import {
  hmacToken,
  startOidcIssuer,
  TEST_AUDIENCE,
  TEST_CLIENT_ID,
  TEST_TENANT,
  unsignedToken,
  type OidcIssuer,
} from '../../support/oidc-issuer.js';

let issuer: OidcIssuer;
beforeAll(async () => {
  issuer = await startOidcIssuer();
});
afterAll(async () => {
  await issuer.close();
});

const entraEnv = (): Record<string, string> => ({
  AUTH_MODE: 'entra',
  ENTRA_TENANT_ID: TEST_TENANT,
  ENTRA_AUDIENCE: TEST_AUDIENCE,
  ENTRA_AUTHORITY_HOST: issuer.url,
});
const validator = (): EntraValidator => {
  const auth = callerAuthOf(entraEnv());
  if (auth.mode !== 'entra') throw new Error('expected entra');
  return new EntraValidator(auth);
};

async function refusal(v: EntraValidator, header: string | null, access: Access = 'read'): Promise<CallerError> {
  const err = await v.check(header, access).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CallerError);
  return err as CallerError;
}

describe('EntraValidator: 401 for no token or a bad one', () => {
  it('no Authorization header: 401 with a bare Bearer challenge', async () => {
    const err = await refusal(validator(), null);
    expect([err.status, err.code, err.wwwAuthenticate]).toEqual([401, 'UNAUTHORIZED', 'Bearer']);
  });

  it('not a bearer header (Basic, a function key): 401 invalid_request', async () => {
    const err = await refusal(validator(), 'Basic dXNlcjpwYXNz');
    expect(err.status).toBe(401);
    expect(err.wwwAuthenticate).toMatch(/^Bearer error="invalid_request"/);
  });

  it.each([
    ['expired (beyond the clock skew)', { expiresIn: -120 }, /expired/],
    ['signed by a key the tenant never published (same kid)', { key: 'foreign' as const }, /signature/],
    ['for another audience', { claims: { aud: 'api://someone-else' } }, /aud/],
    ['from another tenant', { claims: { iss: `${'http://127.0.0.1:1'}/${TEST_TENANT}/v2.0` } }, /iss/],
    [
      'from the v1 issuer of another tenant',
      { claims: { iss: 'https://sts.windows.net/00000000-0000-0000-0000-000000000001/' } },
      /iss/,
    ],
    ['not valid before an hour from now', { claims: { nbf: Math.floor(Date.now() / 1000) + 3600 } }, /nbf/],
    ['without exp', { omit: ['exp'] }, /exp/],
  ])('a token %s: 401 invalid_token', async (_what, options, why) => {
    const err = await refusal(validator(), `Bearer ${await issuer.sign(['Imports.Write'], options)}`);
    expect(err.status).toBe(401);
    expect(err.wwwAuthenticate).toMatch(/^Bearer error="invalid_token"/);
    expect(err.message).toMatch(why);
  });

  it('alg none: 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = unsignedToken({ iss: issuer.issuer, aud: TEST_AUDIENCE, exp: now + 600, roles: ['Imports.Write'] });
    const err = await refusal(validator(), `Bearer ${token}`);
    expect([err.status, err.code]).toEqual([401, 'INVALID_TOKEN']);
  });

  it('HS256 (keyed with the public key, the classic confusion, or any secret): 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = { iss: issuer.issuer, aud: TEST_AUDIENCE, exp: now + 600, roles: ['Imports.Write'] };
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    for (const secret of [
      new TextEncoder().encode(await exportSPKI(publicKey)),
      new TextEncoder().encode('x'.repeat(32)),
    ]) {
      const err = await refusal(validator(), `Bearer ${await hmacToken(payload, secret)}`);
      expect(err.message).toMatch(/RS256/);
    }
  });

  it('garbage: 401', async () => {
    expect((await refusal(validator(), 'Bearer abc.def.ghi')).status).toBe(401);
    expect((await refusal(validator(), 'Bearer abc')).status).toBe(401);
  });
});

describe('EntraValidator: roles and who called', () => {
  it('a valid token without a role: 403 insufficient_scope', async () => {
    const err = await refusal(validator(), `Bearer ${await issuer.sign(undefined)}`);
    expect([err.status, err.code]).toEqual([403, 'FORBIDDEN']);
    expect(err.wwwAuthenticate).toMatch(/^Bearer error="insufficient_scope"/);
  });

  it('Imports.Read reads but may not write (403)', async () => {
    const v = validator();
    const header = `Bearer ${await issuer.sign(['Imports.Read'])}`;
    await expect(v.check(header, 'read')).resolves.toEqual({
      oid: '11111111-2222-3333-4444-555555555555',
      appid: TEST_CLIENT_ID,
    });
    expect((await refusal(v, header, 'write')).status).toBe(403);
  });

  it('Imports.Write reads and writes; the caller is oid and azp (v2.0) or appid (v1.0), never the token', async () => {
    const v = validator();
    await expect(v.check(`Bearer ${await issuer.sign(['Imports.Write'])}`, 'write')).resolves.toEqual({
      oid: '11111111-2222-3333-4444-555555555555',
      appid: TEST_CLIENT_ID,
    });
    const v1 = await issuer.sign(['Imports.Write'], {
      claims: { iss: `https://sts.windows.net/${TEST_TENANT}/`, ver: '1.0', appid: 'a-v1-client', oid: 'o-1' },
      omit: ['azp'],
    });
    await expect(v.check(`Bearer ${v1}`, 'read')).resolves.toEqual({ oid: 'o-1', appid: 'a-v1-client' });
  });

  it('a token a little past exp or before nbf (within the clock skew) still passes', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await issuer.sign(['Imports.Read'], { expiresIn: -20, claims: { nbf: now + 20 } });
    await expect(validator().check(`Bearer ${token}`, 'read')).resolves.toBeDefined();
  });

  it('keys are cached, and fetched again for an unknown kid (a rolled key), at most once per cooldown', async () => {
    const auth = callerAuthOf(entraEnv());
    if (auth.mode !== 'entra') throw new Error('expected entra');
    const v = new EntraValidator(auth, fetch, 3000);
    const before = issuer.jwksRequests();
    await v.check(`Bearer ${await issuer.sign(['Imports.Read'])}`, 'read');
    await v.check(`Bearer ${await issuer.sign(['Imports.Read'])}`, 'read');
    expect(issuer.jwksRequests() - before).toBe(1);
    await issuer.rotate();
    // within the cooldown a forged kid cannot make it fetch again: refused without a request
    expect((await refusal(v, `Bearer ${await issuer.sign(['Imports.Read'])}`)).status).toBe(401);
    expect(issuer.jwksRequests() - before).toBe(1);
    await new Promise((r) => setTimeout(r, 3100));
    await v.check(`Bearer ${await issuer.sign(['Imports.Read'])}`, 'read');
    expect(issuer.jwksRequests() - before).toBe(2);
    expect(issuer.configRequests()).toBeGreaterThan(0);
  });

  it("an authority that cannot be read is the app's failure (AuthorityError), not the caller's", async () => {
    const v = new EntraValidator({
      mode: 'entra',
      tenantId: TEST_TENANT,
      audiences: [TEST_AUDIENCE],
      authorityHost: 'http://127.0.0.1:1',
    });
    await expect(v.check(`Bearer ${await issuer.sign(['Imports.Read'])}`, 'read')).rejects.toBeInstanceOf(
      AuthorityError,
    );
  });
});

describe('settings', () => {
  it('AUTH_MODE defaults to keys; entra needs a tenant GUID and an audience', () => {
    expect(callerAuthOf({})).toEqual({ mode: 'keys' });
    expect(loadConfig({}).callerAuth).toEqual({ mode: 'keys' });
    expect(() => callerAuthOf({ AUTH_MODE: 'entra', ENTRA_AUDIENCE: 'x' })).toThrow(
      /ENTRA_TENANT_ID: is required with AUTH_MODE=entra/,
    );
    expect(() =>
      callerAuthOf({ AUTH_MODE: 'entra', ENTRA_TENANT_ID: 'contoso.onmicrosoft.com', ENTRA_AUDIENCE: 'x' }),
    ).toThrow(/ENTRA_TENANT_ID.*GUID/);
    expect(() => callerAuthOf({ AUTH_MODE: 'entra', ENTRA_TENANT_ID: TEST_TENANT })).toThrow(
      /ENTRA_AUDIENCE: is required/,
    );
    expect(() => callerAuthOf({ AUTH_MODE: 'oauth' })).toThrow(ConfigError);
    expect(() => callerAuthOf({ ...entraEnv(), ENTRA_AUTHORITY_HOST: 'http://login.example' })).toThrow(/https/);
    expect(
      callerAuthOf({ ...entraEnv(), ENTRA_AUDIENCE: `${TEST_AUDIENCE}, ${TEST_CLIENT_ID}`, ENTRA_AUTHORITY_HOST: '' }),
    ).toEqual({
      mode: 'entra',
      tenantId: TEST_TENANT,
      audiences: [TEST_AUDIENCE, TEST_CLIENT_ID],
      authorityHost: 'https://login.microsoftonline.com',
    });
  });

  it("the functions register anonymous only with AUTH_MODE=entra; any other value keeps the host's keys", () => {
    expect(httpAuthLevel({ AUTH_MODE: 'entra' })).toBe('anonymous');
    expect(httpAuthLevel({ AUTH_MODE: ' Entra ' })).toBe('anonymous');
    for (const mode of [undefined, 'keys', 'entraa', '']) expect(httpAuthLevel({ AUTH_MODE: mode })).toBe('function');
  });
});

describe('guarded handlers', () => {
  const seen: (Caller | undefined)[] = [];
  const handler = async (_r: HttpRequest, _c: InvocationContext, caller?: Caller): Promise<HttpResponseInit> => {
    seen.push(caller);
    return { status: 200 };
  };
  const call = async (env: Record<string, string>, access: Access, headers: Record<string, string>, method = 'GET') => {
    const logs: string[] = [];
    const context = new InvocationContext({ logHandler: (_level, ...args) => logs.push(args.join(' ')) });
    const res = await guarded(
      access,
      handler,
      env,
    )(new HttpRequest({ method, url: 'http://127.0.0.1/api/imports', headers }), context);
    return { res, logs };
  };
  const principal = Buffer.from(
    JSON.stringify({ auth_typ: 'aad', claims: [{ typ: 'roles', val: 'Imports.Write' }] }),
  ).toString('base64');

  it('keys mode: the handler runs, without a caller (the host checked the key)', async () => {
    seen.length = 0;
    expect((await call({}, 'write', {})).res.status).toBe(200);
    expect(seen).toEqual([undefined]);
  });

  it('a forged X-MS-CLIENT-PRINCIPAL grants nothing: without a token 401, with a read token POST 403', async () => {
    seen.length = 0;
    const forged = {
      'x-ms-client-principal': principal,
      'x-ms-client-principal-id': 'admin',
      'x-ms-client-principal-name': 'admin',
      'x-ms-client-principal-idp': 'aad',
    };
    const none = await call(entraEnv(), 'read', forged);
    expect(none.res.status).toBe(401);
    expect((none.res.headers as Record<string, string>)['www-authenticate']).toBe('Bearer');
    const read = await call(
      entraEnv(),
      'write',
      { ...forged, authorization: `Bearer ${await issuer.sign(['Imports.Read'])}` },
      'POST',
    );
    expect(read.res.status).toBe(403);
    expect(read.res.jsonBody).toMatchObject({ error: { code: 'FORBIDDEN', target: 'Authorization' } });
    expect(seen).toEqual([]);
  });

  it('a good token runs the handler with its caller, logged by oid/appid and never the token', async () => {
    seen.length = 0;
    const token = await issuer.sign(['Imports.Write']);
    const { res, logs } = await call(entraEnv(), 'write', { authorization: `Bearer ${token}` }, 'POST');
    expect(res.status).toBe(200);
    expect(seen).toEqual([{ oid: '11111111-2222-3333-4444-555555555555', appid: TEST_CLIENT_ID }]);
    expect(logs.join('\n')).toContain(`oid=11111111-2222-3333-4444-555555555555 appid=${TEST_CLIENT_ID}`);
    expect(logs.join('\n')).not.toContain(token.slice(-20));
  });

  it('entra mode without its settings: 503 naming the setting, fail closed', async () => {
    seen.length = 0;
    const { res } = await call({ AUTH_MODE: 'entra', ENTRA_AUDIENCE: TEST_AUDIENCE }, 'read', {
      authorization: `Bearer ${await issuer.sign(['Imports.Write'])}`,
    });
    expect(res.status).toBe(503);
    expect(res.jsonBody).toMatchObject({ error: { code: 'INVALID_SETTING', target: 'ENTRA_TENANT_ID' } });
    expect(seen).toEqual([]);
  });

  it('an unreachable authority: 503 AUTHORITY_UNAVAILABLE with Retry-After', async () => {
    const { res } = await call({ ...entraEnv(), ENTRA_AUTHORITY_HOST: 'http://127.0.0.1:1' }, 'read', {
      authorization: `Bearer ${await issuer.sign(['Imports.Write'])}`,
    });
    expect(res.status).toBe(503);
    expect(res.jsonBody).toMatchObject({ error: { code: 'AUTHORITY_UNAVAILABLE' } });
  });
});
