/**
 * The Entra ID → ACR exchange against a scripted /oauth2 server: exact form fields, caching per scope and
 * of the refresh token (with margins, on a test clock), single-flight, the one refresh on 401, and every
 * refusal's message.
 */
import { createServer, type Server } from 'node:http';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ACCESS_TOKEN_MARGIN_MS,
  AcrExchangeAuthenticator,
  REFRESH_TOKEN_MARGIN_MS,
  entraScope,
  type AcrExchangeOptions,
} from '../../../lib/azure/acr-exchange.js';
import { StaticTokenCredential } from '../../../lib/azure/credentials.js';
import { AzureError } from '../../../lib/azure/errors.js';
import { parseChallenges } from '../../../lib/oci/challenge.js';

type Form = Record<string, string[]>;
interface Seen {
  path: string;
  form: Form;
}
type Script = (path: string, form: Form) => { status: number; body: unknown } | undefined;

const HOUR = 3_600_000;
const T0 = Date.parse('2030-01-01T00:00:00Z');

/** An unsigned JWT with this `exp` (epoch ms) — the client only reads claims. */
function jwt(expMs: number, extra: Record<string, unknown> = {}): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ exp: Math.floor(expMs / 1000), ...extra })}.sig`;
}

class FakeCredential implements TokenCredential {
  readonly calls: (string | string[])[] = [];
  constructor(
    private readonly token = 'entra-token-1',
    private readonly fail?: Error,
  ) {}
  async getToken(scopes: string | string[]): Promise<AccessToken> {
    this.calls.push(scopes);
    if (this.fail) throw this.fail;
    return { token: this.token, expiresOnTimestamp: T0 + HOUR };
  }
}

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server?.closeAllConnections();
  server = undefined;
});

/**
 * A fake ACR: `GET /v2/` answers a Bearer challenge (`challenge(host)`, by default realm `/oauth2/token` and
 * service = the host, as ACR does) unless the script answers it; the /oauth2 endpoints by default grant
 * everything with tokens that live 3 h / 75 min from `clock()`. `seen` holds the /oauth2 requests, `probes`
 * the Authorization header of each `GET /v2/` ('' when none).
 */
async function fakeAcr(clock: () => number, script: Script = () => undefined, challenge?: (host: string) => string) {
  const seen: Seen[] = [];
  const probes: string[] = [];
  let n = 0;
  let host = '';
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form: Form = {};
      for (const [k, v] of new URLSearchParams(Buffer.concat(chunks).toString())) (form[k] ??= []).push(v);
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const reply = (answer: { status: number; body: unknown }, headers: Record<string, string> = {}) => {
        const text = JSON.stringify(answer.body);
        res.writeHead(answer.status, {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(text)),
          ...headers,
        });
        res.end(text);
      };
      if (path === '/v2/') {
        probes.push(req.headers.authorization ?? '');
        const scripted = script(path, form);
        if (scripted) return reply(scripted);
        return reply(
          { status: 401, body: { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] } },
          {
            'www-authenticate': challenge?.(host) ?? `Bearer realm="http://${host}/oauth2/token",service="${host}"`,
          },
        );
      }
      seen.push({ path, form });
      n++;
      const scripted = script(path, form);
      reply(
        scripted ??
          (path === '/oauth2/exchange'
            ? { status: 200, body: { refresh_token: jwt(clock() + 3 * HOUR, { n }) } }
            : { status: 200, body: { access_token: jwt(clock() + 75 * 60_000, { n, scope: form.scope }) } }),
      );
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  host = `127.0.0.1:${port}`;
  return {
    host,
    seen,
    probes,
    exchanges: () => seen.filter((s) => s.path === '/oauth2/exchange'),
    tokens: () => seen.filter((s) => s.path === '/oauth2/token'),
  };
}

function clockAt(start = T0) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

function authenticator(host: string, o: Partial<AcrExchangeOptions> & { now: () => number }) {
  return new AcrExchangeAuthenticator({
    loginServer: host,
    credential: new FakeCredential(),
    scope: entraScope('https://containerregistry.azure.net'),
    insecure: true,
    context: { role: 'target', identity: "the app's managed identity (client ID abc)" },
    http: { retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } },
    ...o,
  });
}

const bearerToken = (header: string | undefined) =>
  JSON.parse(Buffer.from(header!.slice('Bearer '.length).split('.')[1]!, 'base64url').toString()) as {
    n: number;
    scope: string[];
  };

describe('AcrExchangeAuthenticator: wire protocol', () => {
  it('exchanges the Entra ID token, then asks for an access token per scope, with exactly the documented fields', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now);
    const credential = new FakeCredential('entra-token-1');
    const auth = authenticator(acr.host, { now: clock.now, credential });
    const header = await auth.authorize(['repository:team/app:pull']);
    expect(header).toMatch(/^Bearer ey/);
    expect(credential.calls).toEqual(['https://containerregistry.azure.net/.default']);
    expect(acr.probes).toEqual(['']);
    expect(acr.seen.map((s) => s.path)).toEqual(['/oauth2/exchange', '/oauth2/token']);
    expect(acr.seen[0]!.form).toEqual({
      grant_type: ['access_token'],
      service: [acr.host],
      access_token: ['entra-token-1'],
    });
    const refresh = JSON.parse(JSON.stringify(acr.seen[1]!.form.refresh_token)) as string[];
    expect(acr.seen[1]!.form).toEqual({
      grant_type: ['refresh_token'],
      service: [acr.host],
      scope: ['repository:team/app:pull'],
      refresh_token: refresh,
    });
    expect(refresh[0]).toMatch(/^ey/);
  });

  it('sends the tenant when given, merges actions per repository and one scope field per resource', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now);
    const auth = authenticator(acr.host, { now: clock.now, tenant: 'tenant-1' });
    await auth.authorize(['repository:a:push', 'repository:a:pull', 'repository:b:pull']);
    expect(acr.exchanges()[0]!.form.tenant).toEqual(['tenant-1']);
    expect(acr.tokens()[0]!.form.scope).toEqual(['repository:a:pull,push', 'repository:b:pull']);
  });

  it('asks nothing for a request without scopes (the registry challenge names one)', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now);
    expect(await authenticator(acr.host, { now: clock.now }).authorize([])).toBeUndefined();
    expect(acr.seen).toEqual([]);
  });
});

describe('AcrExchangeAuthenticator: the GET /v2/ challenge', () => {
  it('reads it once, without credentials: the exchange and token requests carry its service, tokens come from its realm', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(
      clock.now,
      undefined,
      (host) =>
        `Bearer realm="http://${host}/auth/token?x=1",service="registry.internal.example",scope="registry:catalog:*"`,
    );
    const auth = authenticator(acr.host, { now: clock.now });
    const headers = await Promise.all(Array.from({ length: 20 }, () => auth.authorize(['repository:a:pull'])));
    expect(new Set(headers).size).toBe(1);
    await auth.authorize(['repository:b:pull']);
    expect(acr.probes).toEqual(['']);
    expect(acr.seen.map((s) => s.path)).toEqual(['/oauth2/exchange', '/auth/token', '/auth/token']);
    for (const s of acr.seen) expect(s.form.service).toEqual(['registry.internal.example']);
  });

  it('keeps the login server as service when the answer is no Bearer challenge (Basic, or 200 of an open registry)', async () => {
    for (const challenge of [(_host: string) => 'Basic realm="registry"', undefined]) {
      const clock = clockAt();
      const acr = await fakeAcr(
        clock.now,
        challenge ? undefined : (path) => (path === '/v2/' ? { status: 200, body: {} } : undefined),
        challenge,
      );
      await authenticator(acr.host, { now: clock.now }).authorize(['repository:a:pull']);
      expect(acr.probes).toHaveLength(1);
      expect(acr.seen.map((s) => [s.path, s.form.service])).toEqual([
        ['/oauth2/exchange', [acr.host]],
        ['/oauth2/token', [acr.host]],
      ]);
      await new Promise<void>((r) => server!.close(() => r()));
    }
  });

  it('refuses a challenge whose realm is on another origin before any token is sent', async () => {
    const clock = clockAt();
    const credential = new FakeCredential();
    const acr = await fakeAcr(
      clock.now,
      undefined,
      () => 'Bearer realm="https://login.example.com/oauth2/token",service="x.azurecr.io"',
    );
    await expect(
      authenticator(acr.host, { now: clock.now, credential }).authorize(['repository:a:pull']),
    ).rejects.toMatchObject({
      code: 'AZURE_AUTH_FAILED',
      temporary: false,
      message: expect.stringContaining(
        'points to token endpoint https://login.example.com/oauth2/token on another host',
      ),
    });
    expect(credential.calls).toEqual([]);
    expect(acr.seen).toEqual([]);
  });

  it('each call of the sign-in makes one attempt per request, whatever its policy: the registry request that needs it retries', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now, (path) =>
      path === '/oauth2/exchange' ? { status: 503, body: {} } : undefined,
    );
    const auth = authenticator(acr.host, {
      now: clock.now,
      http: { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1 } },
    });
    await expect(auth.authorize(['repository:a:pull'])).rejects.toMatchObject({ temporary: true });
    expect(acr.exchanges()).toHaveLength(1);
    await expect(auth.authorize(['repository:a:pull'])).rejects.toMatchObject({ temporary: true });
    expect(acr.exchanges()).toHaveLength(2);
  });

  it('a 503 is temporary and not remembered: the next request asks again', async () => {
    const clock = clockAt();
    let down = true;
    const acr = await fakeAcr(
      clock.now,
      (path) => (path === '/v2/' && down ? { status: 503, body: {} } : undefined),
      (host) => `Bearer realm="http://${host}/oauth2/token",service="svc.example"`,
    );
    const auth = authenticator(acr.host, { now: clock.now });
    await expect(auth.authorize(['repository:a:pull'])).rejects.toMatchObject({
      code: 'AZURE_AUTH_FAILED',
      temporary: true,
      message: expect.stringContaining('GET /v2/ answered 503'),
    });
    expect(acr.seen).toEqual([]);
    down = false;
    expect(await auth.authorize(['repository:a:pull'])).toMatch(/^Bearer /);
    expect(acr.probes).toHaveLength(2);
    expect(acr.exchanges()[0]!.form.service).toEqual(['svc.example']);
  });
});

describe('AcrExchangeAuthenticator: caching', () => {
  it('caches access tokens per scope set and the refresh token across scopes', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now);
    const auth = authenticator(acr.host, { now: clock.now });
    const a1 = await auth.authorize(['repository:a:pull']);
    expect(await auth.authorize(['repository:a:pull'])).toBe(a1);
    const b = await auth.authorize(['repository:b:pull,push']);
    expect(b).not.toBe(a1);
    expect(await auth.authorize(['repository:b:push', 'repository:b:pull'])).toBe(b);
    expect(acr.exchanges()).toHaveLength(1);
    expect(acr.tokens()).toHaveLength(2);
  });

  it('fetches single-flight: forty parallel requests cause one exchange and one token request', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now);
    const auth = authenticator(acr.host, { now: clock.now });
    const headers = await Promise.all(Array.from({ length: 40 }, () => auth.authorize(['repository:a:pull'])));
    expect(new Set(headers).size).toBe(1);
    expect(acr.exchanges()).toHaveLength(1);
    expect(acr.tokens()).toHaveLength(1);
  });

  it('renews an access token a minute before it expires, and the refresh token five minutes before', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now);
    const auth = authenticator(acr.host, { now: clock.now });
    const first = await auth.authorize(['repository:a:pull']);
    clock.advance(75 * 60_000 - ACCESS_TOKEN_MARGIN_MS - 1000);
    expect(await auth.authorize(['repository:a:pull'])).toBe(first);
    clock.advance(2000);
    const second = await auth.authorize(['repository:a:pull']);
    expect(second).not.toBe(first);
    expect(acr.exchanges()).toHaveLength(1);
    expect(acr.tokens()).toHaveLength(2);

    // The refresh token (3 h) is kept until 5 min before its expiry, then exchanged anew.
    clock.advance(T0 + 3 * HOUR - REFRESH_TOKEN_MARGIN_MS - 1000 - clock.now());
    await auth.authorize(['repository:c:pull']);
    expect(acr.exchanges()).toHaveLength(1);
    clock.advance(2000);
    await auth.authorize(['repository:d:pull']);
    expect(acr.exchanges()).toHaveLength(2);
  });

  it('keeps short-lived tokens for half their lifetime at most', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now, (path) =>
      path === '/oauth2/exchange'
        ? { status: 200, body: { refresh_token: jwt(clock.now() + 4 * 60_000) } }
        : { status: 200, body: { access_token: jwt(clock.now() + 60_000) } },
    );
    const auth = authenticator(acr.host, { now: clock.now });
    await auth.authorize(['repository:a:pull']);
    clock.advance(29_000);
    await auth.authorize(['repository:a:pull']);
    expect(acr.tokens()).toHaveLength(1);
    clock.advance(2000);
    await auth.authorize(['repository:a:pull']);
    expect(acr.tokens()).toHaveLength(2);
    clock.advance(2 * 60_000);
    await auth.authorize(['repository:b:pull']);
    expect(acr.exchanges()).toHaveLength(2);
  });

  it('keeps an access token without exp for its expires_in, else for the spec minimum of 60 s', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now, (path, form) =>
      path === '/oauth2/token'
        ? {
            status: 200,
            body:
              form.scope?.[0] === 'repository:a:pull'
                ? { access_token: 'opaque-a', expires_in: 600 }
                : { access_token: 'opaque-b' },
          }
        : undefined,
    );
    const auth = authenticator(acr.host, { now: clock.now });
    await auth.authorize(['repository:a:pull']);
    await auth.authorize(['repository:b:pull']);
    clock.advance(45_000);
    await auth.authorize(['repository:a:pull']);
    await auth.authorize(['repository:b:pull']);
    expect(acr.tokens().map((t) => t.form.scope![0])).toEqual([
      'repository:a:pull',
      'repository:b:pull',
      'repository:b:pull',
    ]);
  });
});

describe('AcrExchangeAuthenticator: 401', () => {
  it('a 401 from the registry gets one fresh access token, for the challenged scope first, from the challenge service', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now);
    const auth = authenticator(acr.host, { now: clock.now });
    const before = await auth.authorize(['repository:a:pull']);
    const challenge = parseChallenges(
      `Bearer realm="http://${acr.host}/oauth2/token",service="other.azurecr.io",scope="repository:b:pull",error="insufficient_scope"`,
    );
    const retry = await auth.onUnauthorized(challenge, ['repository:a:pull']);
    expect(retry).not.toBe(before);
    expect(acr.exchanges()).toHaveLength(1);
    const last = acr.tokens().at(-1)!;
    expect(last.form.scope).toEqual(['repository:b:pull', 'repository:a:pull']);
    expect(last.form.service).toEqual(['other.azurecr.io']);
    expect(bearerToken(retry).scope).toEqual(['repository:b:pull', 'repository:a:pull']);
  });

  it('refuses a token endpoint on another origin: Entra ID tokens go to the registry only', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now);
    const auth = authenticator(acr.host, { now: clock.now });
    const challenge = parseChallenges(
      'Bearer realm="https://evil.example.com/oauth2/token",service="x",scope="repository:a:pull"',
    );
    await expect(auth.onUnauthorized(challenge, [])).rejects.toMatchObject({
      code: 'AZURE_AUTH_FAILED',
      message: expect.stringContaining('on another host'),
    });
    expect(acr.seen).toEqual([]);
  });

  it('a 401 from /oauth2/token (refresh token expired early or revoked) gets one new exchange', async () => {
    const clock = clockAt();
    let refuse = 1;
    const acr = await fakeAcr(clock.now, (path) =>
      path === '/oauth2/token' && refuse-- > 0
        ? { status: 401, body: { errors: [{ code: 'UNAUTHORIZED', message: 'refresh token expired' }] } }
        : undefined,
    );
    const auth = authenticator(acr.host, { now: clock.now });
    expect(await auth.authorize(['repository:a:pull'])).toMatch(/^Bearer /);
    expect(acr.seen.map((s) => s.path)).toEqual([
      '/oauth2/exchange',
      '/oauth2/token',
      '/oauth2/exchange',
      '/oauth2/token',
    ]);
  });

  it('a second 401 from /oauth2/token means the identity lacks the rights', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now, (path) =>
      path === '/oauth2/token'
        ? { status: 401, body: { errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] } }
        : undefined,
    );
    const auth = authenticator(acr.host, { now: clock.now });
    await expect(auth.authorize(['repository:team/app:pull,push'])).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
      message: `The app's managed identity (client ID abc) lacks push rights on registry ${acr.host} (repository team/app): assign it the AcrPush role on the registry (Container Registry Repository Writer when the registry uses ABAC repository permissions); the registry answered /oauth2/token answered 401 UNAUTHORIZED: authentication required`,
    });
    expect(acr.exchanges()).toHaveLength(2);
  });
});

describe('AcrExchangeAuthenticator: refusals', () => {
  const firewall = {
    status: 403,
    body: {
      errors: [
        {
          code: 'DENIED',
          message:
            "client with IP '203.0.113.7' is not allowed access. Refer https://aka.ms/acr/firewall to grant access.",
        },
      ],
    },
  };

  it('exchange 401: the registry refused the identity token', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now, () => ({
      status: 401,
      body: { errors: [{ code: 'UNAUTHORIZED', message: 'invalid token' }] },
    }));
    const err = (await authenticator(acr.host, { now: clock.now })
      .authorize(['repository:a:pull'])
      .catch((e: unknown) => e)) as AzureError;
    expect(err).toBeInstanceOf(AzureError);
    expect(err.code).toBe('TOKEN_REJECTED');
    expect(err.temporary).toBe(false);
    expect(err.message).toBe(
      `registry ${acr.host} refused the Entra ID token of the app's managed identity (client ID abc) (/oauth2/exchange answered 401 UNAUTHORIZED: invalid token): the registry must be in the app's tenant, and ACR_AUDIENCE (https://containerregistry.azure.net) an audience it accepts`,
    );
    expect(err.message).not.toContain('entra-token-1');
  });

  it('firewall: target → network-restricted; source by login server → public access disabled; cross-tenant → not supported', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now, () => firewall);
    const target = authenticator(acr.host, { now: clock.now });
    await expect(target.authorize(['repository:a:pull'])).rejects.toMatchObject({
      code: 'NETWORK_RESTRICTED',
      message: expect.stringMatching(
        /^registry 127\.0\.0\.1:\d+ is network-restricted and refused this app's network address: a network-restricted registry must allow trusted services \(az acr update --name 127 --allow-trusted-services true\)/,
      ),
    });
    const source = authenticator(acr.host, { now: clock.now, context: { role: 'source', identity: 'x' } });
    await expect(source.authorize(['repository:a:pull'])).rejects.toMatchObject({
      code: 'PUBLIC_ACCESS_DISABLED',
      message: expect.stringContaining(
        `source registry ${acr.host} has public network access disabled (it refused this app's network address): give the registry by its ARM resource ID`,
      ),
    });
    const byId = authenticator(acr.host, {
      now: clock.now,
      context: { role: 'source', identity: 'x', resourceId: '/subscriptions/x' },
    });
    await expect(byId.authorize(['repository:a:pull'])).rejects.toMatchObject({ code: 'NETWORK_RESTRICTED' });
    const crossTenant = authenticator(acr.host, {
      now: clock.now,
      context: { role: 'source', identity: 'the Entra ID token given as password', crossTenant: true },
    });
    await expect(crossTenant.authorize(['repository:a:pull'])).rejects.toMatchObject({
      code: 'CROSS_TENANT_NOT_SUPPORTED',
      message: expect.stringMatching(
        /^cross-tenant import from a registry with public access disabled is not supported: registry /,
      ),
    });
  });

  it('403 without the firewall text at /oauth2/token: the identity lacks pull rights (source)', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now, (path) =>
      path === '/oauth2/token'
        ? { status: 403, body: { errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] } }
        : undefined,
    );
    const auth = authenticator(acr.host, {
      now: clock.now,
      context: {
        role: 'source',
        identity: "the app's system-assigned managed identity",
        resourceId: '/subscriptions/x',
      },
    });
    await expect(auth.authorize(['repository:team/app:pull'])).rejects.toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringMatching(
        /^The app's system-assigned managed identity lacks pull rights on registry 127\.0\.0\.1:\d+ \(repository team\/app\): assign it the AcrPull role on the registry/,
      ),
    });
  });

  it('404: not an Azure Container Registry; 503: temporary', async () => {
    const clock = clockAt();
    let status = 404;
    const acr = await fakeAcr(clock.now, () => ({ status, body: {} }));
    await expect(authenticator(acr.host, { now: clock.now }).authorize(['repository:a:pull'])).rejects.toMatchObject({
      code: 'NOT_ACR',
      temporary: false,
      message: expect.stringContaining(
        'has no /oauth2/exchange endpoint (404): Entra ID sign-in works with Azure Container Registry only',
      ),
    });
    status = 503;
    await expect(authenticator(acr.host, { now: clock.now }).authorize(['repository:a:pull'])).rejects.toMatchObject({
      code: 'AZURE_AUTH_FAILED',
      temporary: true,
    });
  });

  it('no managed identity: says what to configure', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now);
    const credential = new FakeCredential(
      '',
      new Error(
        'ManagedIdentityCredential: Authentication failed. Message No User Assigned or Delegated Managed Identity found for specified ClientId',
      ),
    );
    await expect(
      authenticator(acr.host, { now: clock.now, credential }).authorize(['repository:a:pull']),
    ).rejects.toMatchObject({
      code: 'IDENTITY_UNAVAILABLE',
      temporary: false,
      message: expect.stringMatching(
        /^could not get an Entra ID token for https:\/\/containerregistry\.azure\.net\/\.default from the app's managed identity \(client ID abc\): .*No User Assigned.* — in Azure, give the app a managed identity \(and set AZURE_CLIENT_ID/,
      ),
    });
    expect(acr.seen).toEqual([]);
  });

  it('a password-only token that expired is refused before anything is sent', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now);
    const expired = jwt(T0 - 60_000);
    const auth = authenticator(acr.host, {
      now: clock.now,
      credential: new StaticTokenCredential(expired, clock.now),
      context: { role: 'source', identity: 'the Entra ID token given as password', crossTenant: true },
    });
    const err = (await auth.authorize(['repository:a:pull']).catch((e: unknown) => e)) as AzureError;
    expect(err.code).toBe('TOKEN_EXPIRED');
    expect(err.message).toBe(
      "the Entra ID token given as password expired at 2029-12-31T23:59:00.000Z: get a new one for the registry's tenant (az account get-access-token --resource https://containerregistry.azure.net --tenant <tenant ID>) and import again",
    );
    expect(err.message).not.toContain(expired);
    expect(acr.seen).toEqual([]);
  });

  it('a password-only token is exchanged as it is', async () => {
    const clock = clockAt();
    const acr = await fakeAcr(clock.now);
    const given = jwt(T0 + HOUR, { tid: 'other' });
    await authenticator(acr.host, {
      now: clock.now,
      credential: new StaticTokenCredential(given, clock.now),
    }).authorize(['repository:a:pull']);
    expect(acr.exchanges()[0]!.form.access_token).toEqual([given]);
  });
});
