/**
 * The CLI sends through node:http (lib/oci/node-http-dispatcher.ts) what the app sends through undici's Agent: the same
 * cases run against both, so that what the clients rely on (connections kept, deadlines, bodies both ways, bounds,
 * aborts, certificates) holds whichever is under them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { NodeHttpDispatcher } from '../../../lib/oci/node-http-dispatcher.js';
import { transportFailure } from '../../../lib/oci/errors.js';
import { MAX_HEADER_BYTES } from '../../../lib/oci/transport.js';
import { selfSignedCertificate } from '../../support/tls.js';

/** What the clients use of a dispatcher (lib/oci/transport.ts raw(), lib/azure/http.ts, lib/cli/client.ts). */
interface Sender {
  request(o: {
    origin: string;
    path: string;
    method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH';
    headers?: Record<string, string>;
    body?: Buffer | AsyncIterable<Buffer>;
    headersTimeout?: number;
    bodyTimeout?: number;
    reset?: boolean;
    signal?: AbortSignal;
  }): Promise<{
    statusCode: number;
    headers: Record<string, string | string[] | undefined>;
    body: AsyncIterable<Buffer> & { destroy(err?: Error): unknown; dump(o?: { limit?: number }): Promise<void> };
  }>;
  close(): Promise<void>;
}

const options = { keepAliveTimeout: 30_000, connections: 64, maxHeaderSize: MAX_HEADER_BYTES };
const DISPATCHERS: readonly [string, () => Sender][] = [
  ['undici (the app)', () => new Agent(options) as unknown as Sender],
  ['node:http (the CLI)', () => new NodeHttpDispatcher(options) as unknown as Sender],
];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** undici gives a connection back to its pool a loop turn after its answer ends (lib/oci/transport.ts) */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
}

async function* paced(chunks: Buffer[], everyMs: number): AsyncIterable<Buffer> {
  for (const c of chunks) {
    await sleep(everyMs);
    yield c;
  }
}

describe.each(DISPATCHERS)('sending through %s', (_name, make) => {
  let server: Server | undefined;
  let sender: Sender | undefined;
  let connections = 0;
  afterEach(async () => {
    await sender?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r) ?? r(undefined));
    server = sender = undefined;
    connections = 0;
  });

  async function serve(
    handle: (req: IncomingMessage, res: ServerResponse) => void,
    host = '127.0.0.1',
  ): Promise<string> {
    server = createServer(handle);
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server!.listen(0, host, r));
    sender = make();
    const port = (server.address() as AddressInfo).port;
    return host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
  }

  it('keeps one connection for requests one after another, HEADs included', async () => {
    // framed as registries frame a HEAD's answer: the Content-Length its GET would have
    const origin = await serve((req, res) => {
      res.setHeader('content-length', '5');
      res.end(req.method === 'HEAD' ? undefined : 'hello');
    });
    for (const method of ['GET', 'HEAD', 'GET', 'HEAD', 'GET'] as const) {
      const res = await sender!.request({
        origin,
        path: '/v2/',
        method,
        ...(method === 'HEAD' ? { reset: false } : {}),
      });
      expect(res.statusCode).toBe(200);
      expect((await readAll(res.body)).toString()).toBe(method === 'HEAD' ? '' : 'hello');
      await turn();
    }
    expect(connections).toBe(1);
  });

  it('sends to a registry given by its IPv6 address', async () => {
    const origin = await serve((req, res) => res.end(`${req.headers.host} ${req.url}`), '::1');
    const res = await sender!.request({ origin, path: '/v2/?n=1', method: 'GET' });
    expect((await readAll(res.body)).toString()).toBe(`${origin.slice('http://'.length)} /v2/?n=1`);
  });

  it('gives header names in lowercase, a repeated header as an array of its values', async () => {
    const origin = await serve((_req, res) => {
      res.setHeader('WWW-Authenticate', ['Bearer realm="https://a/token"', 'Basic realm="b"']);
      res.setHeader('Docker-Content-Digest', 'sha256:abc');
      res.statusCode = 401;
      res.end();
    });
    const res = await sender!.request({ origin, path: '/v2/', method: 'GET' });
    await res.body.dump();
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toEqual(['Bearer realm="https://a/token"', 'Basic realm="b"']);
    expect(res.headers['docker-content-digest']).toBe('sha256:abc');
  });

  it('fails a request whose answer headers do not come within headersTimeout, as a temporary TIMEOUT', async () => {
    const origin = await serve(() => undefined);
    const started = Date.now();
    const err = await sender!
      .request({ origin, path: '/v2/', method: 'GET', headersTimeout: 200 })
      .catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(transportFailure('GET', `${origin}/v2/`, err)).toMatchObject({ code: 'TIMEOUT', temporary: true });
  });

  it('does not time out a request while its body is still being sent', async () => {
    const origin = await serve((req, res) => {
      const hash = createHash('sha256');
      req.on('data', (c: Buffer) => hash.update(c));
      req.on('end', () => res.end(hash.digest('hex')));
    });
    const chunks = Array.from({ length: 6 }, (_, i) => Buffer.alloc(1000, i));
    const res = await sender!.request({
      origin,
      path: '/upload',
      method: 'PATCH',
      body: paced(chunks, 100),
      headersTimeout: 250,
    });
    expect((await readAll(res.body)).toString()).toBe(createHash('sha256').update(Buffer.concat(chunks)).digest('hex'));
  });

  it('ends a body that stops for bodyTimeout, as a temporary TIMEOUT', async () => {
    const origin = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x'.repeat(10));
    });
    const res = await sender!.request({ origin, path: '/blob', method: 'GET', bodyTimeout: 200 });
    const err = await readAll(res.body).catch((e: unknown) => e);
    expect(transportFailure('GET', `${origin}/blob`, err)).toMatchObject({ code: 'TIMEOUT', temporary: true });
  });

  it('does not time out a body its reader holds back', async () => {
    const size = 4 * 1024 * 1024;
    const origin = await serve((_req, res) => res.end(Buffer.alloc(size, 7)));
    const res = await sender!.request({ origin, path: '/blob', method: 'GET', bodyTimeout: 150 });
    await sleep(600);
    expect((await readAll(res.body)).length).toBe(size);
  });

  it('sends an async iterable body with its Content-Length, or chunked without one', async () => {
    const origin = await serve((req, res) => {
      const hash = createHash('sha256');
      req.on('data', (c: Buffer) => hash.update(c));
      req.on('end', () =>
        res.end(
          JSON.stringify({
            length: req.headers['content-length'] ?? null,
            chunked: req.headers['transfer-encoding'] ?? null,
            sha: hash.digest('hex'),
          }),
        ),
      );
    });
    const chunks = [Buffer.from('abc'), Buffer.alloc(70_000, 1), Buffer.from('z')];
    const sha = createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
    const sized = await sender!.request({
      origin,
      path: '/a',
      method: 'PUT',
      headers: { 'content-length': String(70_004) },
      body: paced(chunks, 0),
    });
    expect(JSON.parse((await readAll(sized.body)).toString())).toEqual({ length: '70004', chunked: null, sha });
    const chunked = await sender!.request({ origin, path: '/b', method: 'PATCH', body: paced(chunks, 0) });
    expect(JSON.parse((await readAll(chunked.body)).toString())).toEqual({ length: null, chunked: 'chunked', sha });
  });

  it('fails the request with the error of a body that fails while it is sent', async () => {
    const origin = await serve((req, res) => req.on('end', () => res.end()).resume());
    async function* failing(): AsyncIterable<Buffer> {
      yield Buffer.from('part');
      await sleep(10);
      throw new Error('the source read failed');
    }
    await expect(sender!.request({ origin, path: '/b', method: 'PATCH', body: failing() })).rejects.toThrow(
      'the source read failed',
    );
  });

  it('refuses answer headers beyond maxHeaderSize, not as a temporary failure', async () => {
    const origin = await serve((_req, res) => {
      res.setHeader('x-big', 'a'.repeat(MAX_HEADER_BYTES + 100));
      res.end();
    });
    const err = await sender!.request({ origin, path: '/v2/', method: 'GET' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(transportFailure('GET', `${origin}/v2/`, err)).toMatchObject({ temporary: false });
  });

  it("aborts with the signal's reason, before the answer and while its body is read", async () => {
    const origin = await serve((req, res) => {
      if (req.url === '/slow-body') res.writeHead(200, { 'content-length': '100' }).write('x');
    });
    const before = new AbortController();
    const waiting = sender!.request({ origin, path: '/never', method: 'GET', signal: before.signal });
    await sleep(50);
    before.abort(new Error('step deadline'));
    await expect(waiting).rejects.toThrow('step deadline');

    const during = new AbortController();
    const res = await sender!.request({ origin, path: '/slow-body', method: 'GET', signal: during.signal });
    const reading = readAll(res.body);
    await sleep(50);
    during.abort(new Error('canceled'));
    await expect(reading).rejects.toThrow('canceled');
  });

  it('fails the reader of a body cut short as a temporary failure', async () => {
    const origin = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x'.repeat(10), () => res.socket?.destroy());
    });
    const res = await sender!.request({ origin, path: '/blob', method: 'GET' });
    const err = await readAll(res.body).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(transportFailure('GET', `${origin}/blob`, err)).toMatchObject({ temporary: true });
  });

  it('discards a short body on its connection, and closes the connection past the limit', async () => {
    const origin = await serve((req, res) => res.end(req.url === '/big' ? Buffer.alloc(1024 * 1024) : 'short'));
    const short = await sender!.request({ origin, path: '/short', method: 'GET' });
    await short.body.dump({ limit: 1024 });
    await turn();
    const again = await sender!.request({ origin, path: '/short', method: 'GET' });
    await again.body.dump({ limit: 1024 });
    await turn();
    expect(connections).toBe(1);
    const big = await sender!.request({ origin, path: '/big', method: 'GET' });
    await big.body.dump({ limit: 1024 });
    await turn();
    const after = await sender!.request({ origin, path: '/short', method: 'GET' });
    expect((await readAll(after.body)).toString()).toBe('short');
    // the connection of the long body is gone: the next request needed another
    expect(connections).toBeGreaterThanOrEqual(2);
  });

  it("verifies an https registry's certificate (a self-signed one is refused, not as a temporary failure)", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oci-import-tls-'));
    try {
      const { key, cert } = await selfSignedCertificate(dir);
      const tls = createTlsServer({ key, cert }, (_req, res) => res.end('secret'));
      server = tls;
      await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
      sender = make();
      const origin = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
      const err = await sender.request({ origin, path: '/v2/', method: 'GET' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(
        JSON.stringify((err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code),
      ).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
      expect(transportFailure('GET', `${origin}/v2/`, err)).toMatchObject({ temporary: false });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
