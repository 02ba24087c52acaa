/**
 * The transport, request by request against a scripted peer: which requests are retried and how often,
 * redirects, deadlines (idle, trickle, request bodies), and what of an error answer reaches a message.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, MockAgent } from 'undici';
import { Transport } from '../../../lib/oci/transport.js';
import { discard } from '../../../lib/oci/body.js';
import { RegistryError, redactUrl } from '../../../lib/oci/errors.js';
import type { Digest } from '../../../lib/oci/digest.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { scripted, registryErrors, type ScriptedPeer } from '../../support/scripted.js';

const retry = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 };
const fast = { idleMs: 300, minBytesPerSecond: 1000, rateWindowMs: 300 };

describe('transport (scripted)', () => {
  let peer: ScriptedPeer | undefined;
  afterEach(async () => {
    await peer?.close();
    peer = undefined;
  });

  it("retries an idempotent request on 503 up to the policy's attempts, then throws the registry error", async () => {
    peer = await scripted([
      { req: { method: 'GET', path: '/v2/a/manifests/1' }, res: { status: 503 } },
      { req: { method: 'GET', path: '/v2/a/manifests/1' }, res: { status: 503 } },
      {
        req: { method: 'GET', path: '/v2/a/manifests/1' },
        res: { status: 503, body: registryErrors('UNAVAILABLE', 'down') },
      },
    ]);
    const t = new Transport({ retry, side: 'source' });
    const err = await t
      .send({ method: 'GET', url: new URL(`${peer.url}/v2/a/manifests/1`), scopes: [] })
      .catch((e: unknown) => e);
    peer.verify();
    expect(err).toBeInstanceOf(RegistryError);
    expect(err).toMatchObject({ status: 503, code: 'UNAVAILABLE', temporary: true, side: 'source' });
  });

  it('sends a POST once: it is not idempotent', async () => {
    peer = await scripted([{ req: { method: 'POST', path: '/v2/a/blobs/uploads/' }, res: { status: 503 } }]);
    const t = new Transport({ retry });
    await expect(
      t.send({ method: 'POST', url: new URL(`${peer.url}/v2/a/blobs/uploads/`), scopes: [] }),
    ).rejects.toMatchObject({ status: 503 });
    peer.verify();
  });

  it("quotes a registry's error JSON, never a raw body (an internal service's answer stays out of messages)", async () => {
    peer = await scripted([
      {
        req: { method: 'GET', path: '/v2/a/manifests/1' },
        res: { status: 404, body: registryErrors('MANIFEST_UNKNOWN', 'manifest unknown') },
      },
      {
        req: { method: 'GET', path: '/v2/a/manifests/2' },
        res: { status: 403, body: '<html>internal admin console: secret=hunter2</html>' },
      },
    ]);
    const t = new Transport({ retry });
    const known = await t
      .expect({ method: 'GET', url: new URL(`${peer.url}/v2/a/manifests/1`), scopes: [] }, 200)
      .catch((e: unknown) => e);
    expect((known as Error).message).toContain('MANIFEST_UNKNOWN: manifest unknown');
    const raw = await t
      .expect({ method: 'GET', url: new URL(`${peer.url}/v2/a/manifests/2`), scopes: [] }, 200)
      .catch((e: unknown) => e);
    expect((raw as Error).message).toContain('answered 403');
    expect((raw as Error).message).not.toContain('hunter2');
    peer.verify();
  });

  it('ends a body that stops (no byte for the idle time) with TIMEOUT', async () => {
    const client = (host: string) =>
      new RegistryClient({ registry: host, insecure: true, retry: { ...retry, maxAttempts: 1 }, timeouts: fast });
    peer = await scripted([
      {
        req: { method: 'GET', path: '/v2/a/manifests/1' },
        res: {
          status: 200,
          stallAfter: Buffer.from('{"schema'),
          headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        },
      },
    ]);
    const t0 = Date.now();
    await expect(client(peer.host).getManifest('a', '1')).rejects.toMatchObject({ code: 'TIMEOUT', temporary: true });
    expect(Date.now() - t0).toBeLessThan(5000);
    peer.verify();
  });

  it('refuses a redirect from https to plain http', async () => {
    const agent = new MockAgent();
    agent.disableNetConnect();
    agent
      .get('https://registry.test')
      .intercept({ path: '/v2/a/blobs/sha256:aa', method: 'GET' })
      .reply(307, '', { headers: { location: 'http://storage.test/blob?sig=x' } });
    const t = new Transport({ retry, dispatcher: agent });
    await expect(
      t.send({
        method: 'GET',
        url: new URL('https://registry.test/v2/a/blobs/sha256:aa'),
        scopes: [],
        followRedirects: true,
      }),
    ).rejects.toMatchObject({ code: 'INSECURE_REDIRECT', temporary: false });
    await agent.close();
  });

  it('drops Authorization on a redirect to another origin, keeps it on the same origin', async () => {
    const storage = await scripted([
      {
        req: { method: 'GET', path: '/blob?sig=1', headers: { authorization: undefined } },
        res: { status: 200, body: 'x' },
      },
    ]);
    peer = await scripted([
      {
        req: { method: 'GET', path: '/v2/a/blobs/sha256:aa', headers: { authorization: 'Basic dTpw' } },
        res: { status: 307, headers: { location: `${storage.url}/blob?sig=1` } },
      },
    ]);
    const t = new Transport({
      retry,
      authenticator: { authorize: async () => 'Basic dTpw', onUnauthorized: async () => undefined },
    });
    const res = await t.send({
      method: 'GET',
      url: new URL(`${peer.url}/v2/a/blobs/sha256:aa`),
      scopes: [],
      followRedirects: true,
    });
    await discard(res.body);
    expect(res.status).toBe(200);
    peer.verify();
    storage.verify();
    await storage.close();
  });

  it('a short Retry-After is waited, a long one is RATE_LIMITED at once (one request)', async () => {
    peer = await scripted([
      { req: { method: 'HEAD', path: '/v2/a/manifests/1' }, res: { status: 429, headers: { 'retry-after': '1' } } },
      {
        req: { method: 'HEAD', path: '/v2/a/manifests/1' },
        res: { status: 200, headers: { 'docker-content-digest': 'sha256:' + 'a'.repeat(64) } },
      },
      {
        req: { method: 'HEAD', path: '/v2/a/manifests/2' },
        res: { status: 429, headers: { 'retry-after': '999999' } },
      },
    ]);
    const client = new RegistryClient({ registry: peer.host, insecure: true, retry });
    const t0 = Date.now();
    expect((await client.headManifest('a', '1'))?.digest).toMatch(/^sha256:a+$/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    await expect(client.headManifest('a', '2')).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      retryAfterMs: 999_999_000,
    });
    peer.verify();
  });
});

describe('connections', () => {
  /** A local server answering with `handle`, counting the connections it accepts; `run` gets its host and an Agent. */
  async function counting(
    handle: Parameters<typeof createServer>[1],
    maxConnections: number,
    run: (host: string, dispatcher: Agent) => Promise<void>,
  ): Promise<number> {
    let connections = 0;
    const server = createServer(handle);
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const dispatcher = new Agent({ connections: maxConnections });
    try {
      await run(`127.0.0.1:${(server.address() as AddressInfo).port}`, dispatcher);
      return connections;
    } finally {
      await dispatcher.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  // undici closes a connection after every HEAD unless told otherwise: a sync's HEAD comparisons and an import's
  // blob checks then cost a TCP (and, on https, a TLS) handshake each — 414 connections for the 1,000 requests of a
  // 100-tag sync pass into distribution 2.8 before, 19 after.
  it('keeps its connection after a HEAD: HEADs and GETs one after another share one', async () => {
    const connections = await counting(
      (req, res) => {
        const manifest = req.url?.includes('/manifests/');
        res.writeHead(manifest ? 200 : 404, {
          'content-type': 'application/vnd.oci.image.manifest.v1+json',
          'content-length': '2',
          ...(manifest ? { 'docker-content-digest': `sha256:${'a'.repeat(64)}` } : {}),
        });
        res.end(req.method === 'HEAD' ? undefined : '{}');
      },
      1,
      async (host, dispatcher) => {
        const client = new RegistryClient({ registry: host, insecure: true, retry, side: 'target', dispatcher });
        for (let i = 0; i < 3; i++) {
          expect(await client.headManifest('a', `v${i}`)).toMatchObject({ digest: `sha256:${'a'.repeat(64)}` });
          expect(await client.headBlob('a', `sha256:${String(i).repeat(64)}` as Digest)).toBeUndefined();
        }
        await client.getManifest('a', 'v1').catch(() => undefined);
      },
    );
    expect(connections).toBe(1);
  });

  // undici gives a connection back to its pool a full event-loop turn after its answer ended (setImmediate): a request
  // sent at once (the next of a chain: a HEAD that said 404, then the upload's POST) found it taken and opened another.
  it('sends the next request of a chain on the connection the last one just freed, where more are allowed', async () => {
    const connections = await counting(
      (req, res) => {
        if (req.method === 'POST') {
          res.writeHead(202, { location: '/v2/a/blobs/uploads/u1', 'content-length': '0' });
          res.end();
          return;
        }
        res.writeHead(404, { 'content-type': 'application/json', 'content-length': '2' });
        res.end(req.method === 'HEAD' ? undefined : '{}');
      },
      8,
      async (host, dispatcher) => {
        const client = new RegistryClient({ registry: host, insecure: true, retry, side: 'target', dispatcher });
        expect(await client.headManifest('a', 'v1')).toBeUndefined();
        for (let i = 0; i < 3; i++)
          expect(await client.headBlob('a', `sha256:${String(i).repeat(64)}` as Digest)).toBeUndefined();
        const t = new Transport({ retry, side: 'target', dispatcher });
        const posted = await t.send({ method: 'POST', url: new URL(`http://${host}/v2/a/blobs/uploads/`), scopes: [] });
        await discard(posted.body);
        expect(posted.status).toBe(202);
      },
    );
    expect(connections).toBe(1);
  });
});

describe('redactUrl: what a message may say of a URL', () => {
  it('drops userinfo and the query (upload state tokens, signed URLs), keeps the rest; other schemes and garbage too', () => {
    expect(redactUrl('https://user:secret@registry.example:5000/v2/app/blobs/uploads/u1?_state=tok&digest=x')).toBe(
      'https://registry.example:5000/v2/app/blobs/uploads/u1?…',
    );
    expect(redactUrl(new URL('http://127.0.0.1:5000/v2/app/manifests/1'))).toBe(
      'http://127.0.0.1:5000/v2/app/manifests/1',
    );
    expect(redactUrl('https://cdn.example/blob#part?sig=1')).toBe('https://cdn.example/blob#part?sig=1');
    expect(redactUrl('https://cdn.example/blob?sig=1#frag')).toBe('https://cdn.example/blob#frag?…');
    expect(redactUrl('https://registry.example')).toBe('https://registry.example/');
    expect(redactUrl('ftp://user:pw@host/file?x=1')).toBe('ftp://host/file?…');
    expect(redactUrl('not a url')).toBe('<invalid url>');
  });
});
