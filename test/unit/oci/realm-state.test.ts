/**
 * What a client learns from challenges (issue 22, finding 5), against scripted peers: a 401 from the target of a
 * cross-origin redirect teaches nothing (its realm gets no request, let alone credentials), and a realm that was
 * refused is not remembered — the next request asks the registry again instead of failing without a request.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '../../../lib/oci/digest.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { guardedDispatcher } from '../../../lib/policy/sources.js';
import { scripted, type ScriptedPeer } from '../../support/scripted.js';

const retry = { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 };
const digest = `sha256:${'b'.repeat(64)}` as Digest;

describe('challenges are learned from the registry itself, and only once they work', () => {
  const peers: ScriptedPeer[] = [];
  afterEach(async () => {
    await Promise.all(peers.splice(0).map((p) => p.close()));
  });

  it('a 401 challenge from a cross-origin redirect target is not learned: its realm sees no request and no credential', async () => {
    const evil = await scripted([
      {
        req: { method: 'GET', path: '/blob' },
        res: (_req, _body, self) => ({
          status: 401,
          headers: { 'www-authenticate': `Bearer realm="${self.url}/token",service="evil"` },
        }),
      },
    ]);
    const registry = await scripted([
      {
        req: { method: 'GET', path: `/v2/app/blobs/${digest}` },
        res: { status: 307, headers: { location: `${evil.url}/blob` } },
      },
    ]);
    peers.push(evil, registry);
    const client = new RegistryClient({
      registry: registry.host,
      insecure: true,
      retry,
      credentials: { username: 'me', password: 'my-password' },
    });
    const err = await client.getBlobRange('app', digest, 0, 9, () => {}).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 401 });
    expect(evil.seen.map((r) => r.path)).toEqual(['/blob']); // no GET /token
    expect(evil.seen.every((r) => r.headers.authorization === undefined)).toBe(true);
    evil.verify();
    registry.verify();
  });

  it('a refused realm is not cached: the next request goes to the registry again (and succeeds once it answers)', async () => {
    const registry = await scripted([
      // a challenge naming a realm the guard refuses (the name resolves to loopback, which no explicit pattern names)
      {
        req: { method: 'HEAD', path: '/v2/app/manifests/1' },
        res: { status: 401, headers: { 'www-authenticate': 'Bearer realm="http://realm.test:9/token",service="x"' } },
      },
      // the registry then takes anonymous requests
      {
        req: { method: 'HEAD', path: '/v2/app/manifests/1', headers: { authorization: undefined } },
        res: { status: 200, headers: { 'docker-content-digest': digest } },
      },
    ]);
    peers.push(registry);
    const lookups: string[] = [];
    const dispatcher = guardedDispatcher([registry.host], async (host) => {
      lookups.push(host);
      return ['127.0.0.1'];
    });
    const client = new RegistryClient({ registry: registry.host, insecure: true, retry, dispatcher });
    await expect(client.headManifest('app', '1')).rejects.toMatchObject({ code: 'PRIVATE_ADDRESS' });
    expect(lookups).toEqual(['realm.test']);
    expect((await client.headManifest('app', '1'))?.digest).toBe(digest);
    registry.verify();
    await dispatcher.close();
  });
});
