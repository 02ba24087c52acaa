/**
 * AUTH_MODE=entra through the local host process (issue 24, "done when"): a local OpenID issuer stands in for
 * Entra ID (ENTRA_AUTHORITY_HOST points at it); tokens without a role, with the wrong one, badly signed or
 * forged are refused, and an Imports.Write token imports, its caller recorded on the job and in the log.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installAz } from '../support/az-standin.js';
import { runBin } from '../support/cli.js';
import { startHost, type HostProcess } from '../host/host-process.js';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { seedOneLayerImage as seedImage, startFakeRegistry, type FakeRegistry } from '../support/fake-registry.js';
import {
  startOidcIssuer,
  TEST_AUDIENCE,
  TEST_CLIENT_ID,
  TEST_TENANT,
  unsignedToken,
  type OidcIssuer,
} from '../support/oidc-issuer.js';

const KEY = 'entra-e2e-function-key';

describe('AUTH_MODE=entra through the local host', () => {
  let azurite: RunningAzurite;
  let src: FakeRegistry;
  let dst: FakeRegistry;
  let issuer: OidcIssuer;
  let host: HostProcess | undefined;
  let digest = '';

  beforeAll(async () => {
    [azurite, src, dst, issuer] = await Promise.all([
      startAzurite(),
      startFakeRegistry(),
      startFakeRegistry(),
      startOidcIssuer(),
    ]);
    digest = seedImage(src, 'team/app', '1');
    host = await startHost({
      args: ['--main', 'functions/*.ts', '--port', '0', '--no-azurite'],
      readyTimeoutMs: 60_000,
      env: {
        AzureWebJobsStorage: azurite.connectionString,
        IMPORT_QUEUE: 'entra',
        LOCAL_HOST_FUNCTION_KEY: KEY,
        LOCAL_HOST_QUEUE_LEASE_SECONDS: '3',
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${src.host},${dst.host}`,
        ALLOWED_SOURCES: src.host,
        AUTH_MODE: 'entra',
        ENTRA_TENANT_ID: TEST_TENANT,
        ENTRA_AUDIENCE: TEST_AUDIENCE,
        ENTRA_AUTHORITY_HOST: issuer.url,
      },
    });
  }, 120_000);

  afterAll(async () => {
    await host?.stop('SIGTERM');
    await Promise.all([azurite?.stop(), src?.close(), dst?.close(), issuer?.close()]);
  });

  const api = (path: string, init: { method?: string; headers?: Record<string, string>; body?: unknown } = {}) =>
    fetch(`${host!.url}/api/${path}`, {
      method: init.method ?? 'GET',
      headers: { ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  const bearer = async (roles: string[] | undefined, options?: Parameters<OidcIssuer['sign']>[1]) => ({
    authorization: `Bearer ${await issuer.sign(roles, options)}`,
  });
  const body = (): unknown => ({ source: `${src.host}/team/app:1`, images: ['mirror/app:1'] });

  it('no token, a function key, or a forged X-MS-CLIENT-PRINCIPAL: 401 with WWW-Authenticate: Bearer', async () => {
    const principal = Buffer.from(
      JSON.stringify({ auth_typ: 'aad', claims: [{ typ: 'roles', val: 'Imports.Write' }] }),
    ).toString('base64');
    const variants: Record<string, string>[] = [
      {},
      { 'x-functions-key': KEY },
      { 'x-ms-client-principal': principal, 'x-ms-client-principal-id': 'x', 'x-ms-client-principal-idp': 'aad' },
    ];
    for (const headers of variants) {
      for (const [path, method] of [
        ['imports', 'POST'],
        ['imports', 'GET'],
        ['ui', 'GET'],
        ['openapi.json', 'GET'],
      ] as const) {
        const res = await api(path, { method, headers, ...(method === 'POST' ? { body: body() } : {}) });
        expect(res.status, `${method} ${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
      }
    }
    expect(dst.requests).toEqual([]);
  });

  it('expired, foreign-key, alg none, wrong audience, wrong issuer: 401 invalid_token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const tokens = {
      expired: await issuer.sign(['Imports.Write'], { expiresIn: -600 }),
      foreignKey: await issuer.sign(['Imports.Write'], { key: 'foreign' }),
      algNone: unsignedToken({ iss: issuer.issuer, aud: TEST_AUDIENCE, exp: now + 600, roles: ['Imports.Write'] }),
      audience: await issuer.sign(['Imports.Write'], { claims: { aud: 'api://another-api' } }),
      issuer: await issuer.sign(['Imports.Write'], {
        claims: { iss: 'https://sts.windows.net/00000000-0000-0000-0000-000000000001/' },
      }),
    };
    for (const [what, token] of Object.entries(tokens)) {
      const res = await api('imports', { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: body() });
      expect(res.status, what).toBe(401);
      expect(res.headers.get('www-authenticate'), what).toMatch(/^Bearer error="invalid_token"/);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_TOKEN');
    }
  });

  it('a token without a role: 403; Imports.Read lists and reads but a POST or a cancel is 403', async () => {
    expect((await api('imports', { headers: await bearer(undefined) })).status).toBe(403);
    const read = await bearer(['Imports.Read']);
    expect((await api('imports', { headers: read })).status).toBe(200);
    expect((await api('openapi.json', { headers: read })).status).toBe(200);
    expect((await api('ui', { headers: read })).status).toBe(200);
    const post = await api('imports', { method: 'POST', headers: read, body: body() });
    expect(post.status).toBe(403);
    expect(post.headers.get('www-authenticate')).toMatch(/insufficient_scope/);
    expect(
      (await api('imports/00000000-0000-4000-8000-000000000000/cancel', { method: 'POST', headers: read })).status,
    ).toBe(403);
  });

  it('Imports.Write imports; the job and its log name the caller (oid, appid), never the token', async () => {
    const write = await bearer(['Imports.Write']);
    const res = await api('imports', { method: 'POST', headers: write, body: body() });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    let status: { status: string; digest?: string; caller?: unknown } = { status: '' };
    for (
      const deadline = Date.now() + 60_000;
      Date.now() < deadline && !['succeeded', 'failed'].includes(status.status);
      await new Promise((r) => setTimeout(r, 200))
    ) {
      status = (await (
        await api(`imports/${id}`, { headers: await bearer(['Imports.Read']) })
      ).json()) as typeof status;
    }
    expect(status).toMatchObject({
      status: 'succeeded',
      digest,
      caller: { oid: '11111111-2222-3333-4444-555555555555', appid: TEST_CLIENT_ID },
    });
    expect(dst.getManifest('mirror/app', '1')).toBeDefined();
    const log = host!.output();
    expect(log).toContain(`import ${id} queued by oid=11111111-2222-3333-4444-555555555555 appid=${TEST_CLIENT_ID}`);
    expect(log).not.toContain(write.authorization.slice(-30));
  });

  it('the installed CLI imports through --endpoint with a token from az login (--scope), one token for the run', async () => {
    const work = await mkdtemp(join(tmpdir(), 'oci-import-entra-cli-'));
    try {
      const az = await installAz(join(work, 'az'));
      await az.login(TEST_AUDIENCE, await issuer.sign(['Imports.Write'], { claims: { oid: 'cli-user-oid' } }));
      // only the Azure CLI credential: no link of the chain reaches a real endpoint (169.254.169.254 included)
      const env = { PATH: az.path, AZURE_TOKEN_CREDENTIALS: 'AzureCliCredential', HOME: work };
      const args = ['--endpoint', `${host!.url}/api`, '--scope', `${TEST_AUDIENCE}/.default`];
      const run = await runBin(['import', ...args, '--source', `${src.host}/team/app:1`, '--image', 'cli/app:1'], env);
      expect(run.code, run.stderr).toBe(0);
      expect(dst.getManifest('cli/app', '1')).toBeDefined();
      // the POST and every status poll with the one token az printed
      expect(await az.calls()).toEqual([
        ['account', 'get-access-token', '--output', 'json', '--resource', TEST_AUDIENCE],
      ]);
      const listed = await runBin(['list', ...args, '--json'], { ...env, OCI_IMPORT_SCOPE: undefined });
      expect(listed.code, listed.stderr).toBe(0);
      expect(listed.stdout).toContain('cli-user-oid');

      await az.logout();
      const signedOut = await runBin(['list', '--endpoint', `${host!.url}/api`], {
        ...env,
        OCI_IMPORT_SCOPE: `${TEST_AUDIENCE}/.default`,
      });
      expect(signedOut.code).toBe(1);
      expect(signedOut.stderr).toContain('SIGN_IN_FAILED');
      expect(signedOut.stderr).toContain('az login');
      const keyed = await runBin(['list', '--endpoint', `${host!.url}/api`], { OCI_IMPORT_KEY: KEY });
      expect(keyed.code).toBe(1);
      expect(keyed.stderr).toContain('(401)');
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
