/**
 * Challenge-driven auth against scripted peers: the token dance request by request, and where bound
 * credentials may go — the registry itself, or a realm whose host and port their binding names (a port-less
 * pattern names every port of its host).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { BoundCredentials } from '../../../lib/oci/auth.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { matchesPattern } from '../../../lib/policy/sources.js';
import { scripted, type ScriptedPeer } from '../../support/scripted.js';

const retry = { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 };
const BASIC = `Basic ${Buffer.from('hubuser:hub-secret').toString('base64')}`;
const digest = `sha256:${'a'.repeat(64)}`;

const bound = (patterns: string[]): BoundCredentials => ({
  username: 'hubuser',
  password: 'hub-secret',
  label: 'credential "hub"',
  mayReceive: (host) => patterns.some((p) => matchesPattern(host, p)),
  bindingSetting: 'REGISTRY_CREDENTIALS__hub__REGISTRIES',
});

describe('challenge auth (scripted)', () => {
  const peers: ScriptedPeer[] = [];
  // every peer is checked, even where a test forgets to: each exchange came, in order, and nothing else
  afterEach(async () => {
    const done = peers.splice(0);
    await Promise.all(done.map((p) => p.close()));
    for (const p of done) p.verify();
  });

  it('Bearer: 401 → token GET with the credentials on the realm (same host, another port the binding names) → the request again with the token', async () => {
    const realm = await scripted([
      {
        req: {
          method: 'GET',
          path: /^\/token\?service=reg&scope=repository%3Aapp%3Apull&account=hubuser$/,
          headers: { authorization: BASIC },
        },
        res: { status: 200, body: '{"token":"t1","expires_in":300}' },
      },
    ]);
    const registry = await scripted([
      {
        req: { method: 'HEAD', path: `/v2/app/manifests/1`, headers: { authorization: undefined } },
        res: {
          status: 401,
          headers: {
            'www-authenticate': `Bearer realm="${realm.url}/token",service="reg",scope="repository:app:pull"`,
          },
        },
      },
      {
        req: { method: 'HEAD', path: `/v2/app/manifests/1`, headers: { authorization: 'Bearer t1' } },
        res: { status: 200, headers: { 'docker-content-digest': digest } },
      },
      // the token is reused for the same scope
      {
        req: { method: 'HEAD', path: `/v2/app/manifests/2`, headers: { authorization: 'Bearer t1' } },
        res: { status: 404 },
      },
    ]);
    peers.push(realm, registry);
    const client = new RegistryClient({
      registry: registry.host,
      insecure: true,
      retry,
      credentials: bound([registry.host, realm.host]),
    });
    expect((await client.headManifest('app', '1'))?.digest).toBe(digest);
    expect(await client.headManifest('app', '2')).toBeUndefined();
    registry.verify();
    realm.verify();
  });

  it('a bound credential is not sent to a token realm on another host its binding does not name', async () => {
    const registry = await scripted([
      {
        req: { method: 'HEAD', path: `/v2/app/manifests/1` },
        res: {
          status: 401,
          headers: { 'www-authenticate': 'Bearer realm="http://collector.test:9/token",service="x"' },
        },
      },
    ]);
    peers.push(registry);
    const client = new RegistryClient({
      registry: registry.host,
      insecure: true,
      retry,
      credentials: bound([registry.host]),
    });
    await expect(client.headManifest('app', '1')).rejects.toMatchObject({
      code: 'CREDENTIAL_NOT_ALLOWED',
      message: expect.stringContaining('may not be sent to collector.test:9'),
    });
    registry.verify();
  });

  it('a credential bound to host:port is not sent to a token realm on the same host at another port', async () => {
    const realm = await scripted([]);
    const registry = await scripted([
      {
        req: { method: 'HEAD', path: `/v2/app/manifests/1` },
        res: { status: 401, headers: { 'www-authenticate': `Bearer realm="${realm.url}/token",service="x"` } },
      },
    ]);
    peers.push(realm, registry);
    const client = new RegistryClient({
      registry: registry.host,
      insecure: true,
      retry,
      credentials: bound([registry.host]),
    });
    await expect(client.headManifest('app', '1')).rejects.toMatchObject({
      code: 'CREDENTIAL_NOT_ALLOWED',
      message: expect.stringContaining(`may not be sent to ${realm.host}, the token endpoint of ${registry.host}`),
    });
    expect(realm.seen).toEqual([]);
    registry.verify();
  });

  it('a bound credential is not sent as Basic to a registry its binding does not name', async () => {
    const registry = await scripted([
      {
        req: { method: 'HEAD', path: `/v2/app/manifests/1`, headers: { authorization: undefined } },
        res: { status: 401, headers: { 'www-authenticate': 'Basic realm="r"' } },
      },
    ]);
    peers.push(registry);
    const client = new RegistryClient({
      registry: registry.host,
      insecure: true,
      retry,
      credentials: bound(['docker.io']),
    });
    await expect(client.headManifest('app', '1')).rejects.toMatchObject({
      code: 'CREDENTIAL_NOT_ALLOWED',
      message: expect.stringContaining('REGISTRY_CREDENTIALS__hub__REGISTRIES'),
    });
    registry.verify();
  });

  it('an auth failure names the credential, never its username', async () => {
    const realm = await scripted([{ req: { method: 'GET', path: /^\/token/ }, res: { status: 401 } }]);
    const registry = await scripted([
      {
        req: { method: 'HEAD', path: `/v2/app/manifests/1` },
        res: { status: 401, headers: { 'www-authenticate': `Bearer realm="${realm.url}/token"` } },
      },
    ]);
    peers.push(realm, registry);
    const client = new RegistryClient({
      registry: registry.host,
      insecure: true,
      retry,
      credentials: bound(['127.0.0.1']),
    });
    const err = await client.headManifest('app', '1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AUTH_FAILED', message: expect.stringContaining('credential "hub"') });
    expect((err as Error).message).not.toContain('hubuser');
  });
});

describe('the sign-in makes one attempt inside each attempt of its request (no nested retries)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => server?.close(r));
    server = undefined;
  });

  it('a token endpoint answering 503: one token request per attempt of the manifest GET, not attempts × attempts', async () => {
    const seen: string[] = [];
    server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      seen.push(`${req.method} ${path}`);
      if (path === '/token') {
        res.writeHead(503).end();
        return;
      }
      const { port } = server!.address() as AddressInfo;
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="reg"` }).end();
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as AddressInfo;
    const client = new RegistryClient({
      registry: `127.0.0.1:${port}`,
      insecure: true,
      retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
      credentials: bound(['127.0.0.1']),
    });
    await expect(client.getManifest('app', '1')).rejects.toMatchObject({ status: 503, temporary: true });
    // each of the GET's 3 attempts asks the token endpoint once (a token fetch retrying inside them would make 9)
    expect(seen.filter((s) => s === 'GET /token')).toHaveLength(3);
  });
});
