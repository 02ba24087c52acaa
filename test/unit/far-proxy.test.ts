/**
 * The benchmark's far-away proxy: latency per request, a bandwidth cap per connection and direction,
 * keep-alive with every kind of message framing, and the Host header passing unchanged (distribution
 * builds upload Locations from it). Timed assertions are lower bounds only (a busy machine makes
 * things slower, never faster).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startFarProxy, type FarProxy } from '../../scripts/bench/far-proxy.js';

const MB = 1_000_000;
const BODY = Buffer.alloc(5 * MB, 7);

let server: Server | undefined;
let proxy: FarProxy | undefined;
const clients: Client[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await proxy?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = proxy = undefined;
});

/**
 * A server with `/small`, `/big` (5 MB), `/chunked` (5 MB without Content-Length), `PUT /upload`
 * (answers the byte count) and `POST /uploads/` (an absolute Location built from Host, as distribution does).
 */
async function start(latencyMs: number, bytesPerSecond: number): Promise<{ target: string; proxy: FarProxy }> {
  server = createServer((req, res) => {
    if (req.url === '/big')
      return void res.writeHead(200, { 'content-length': BODY.length }).end(req.method === 'HEAD' ? undefined : BODY);
    if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let i = 0; i < 5; i++) res.write(BODY.subarray(i * MB, (i + 1) * MB));
      return void res.end();
    }
    if (req.url === '/upload') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.writeHead(201, { 'content-type': 'text/plain' }).end(String(n)));
      return;
    }
    if (req.url === '/uploads/')
      return void res
        .writeHead(202, { location: `http://${req.headers.host}/v2/uploads/abc?_state=x`, 'content-length': 0 })
        .end();
    if (req.url === '/empty') return void res.writeHead(204).end();
    if (req.url === '/close')
      return void res.writeHead(200, { 'content-length': BODY.length, connection: 'close' }).end(BODY);
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`host=${req.headers.host}`);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()));
  const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy = await startFarProxy({ target, latencyMs, bytesPerSecond });
  return { target, proxy };
}

function client(host: string): Client {
  const c = new Client(`http://${host}`, { pipelining: 1 });
  clients.push(c);
  return c;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await fn();
  return { ms: performance.now() - t, value };
}

describe('far-away proxy', () => {
  it('adds the latency to every request of a kept-alive connection', async () => {
    const { proxy } = await start(20, 100 * MB);
    const c = client(proxy.host);
    const { ms, value } = await timed(async () => {
      const texts: string[] = [];
      for (let i = 0; i < 5; i++) texts.push(await (await c.request({ method: 'GET', path: '/small' })).body.text());
      return texts;
    });
    expect(ms).toBeGreaterThanOrEqual(5 * 20 - 5);
    // the Host header passes unchanged (distribution builds its Locations from it)
    expect(value).toEqual(Array(5).fill(`host=${proxy.host}`));
    expect(proxy.stats).toMatchObject({ connections: 1, requests: 5 });
    expect(proxy.stats.log).toEqual(Array(5).fill({ method: 'GET', path: '/small', status: 200 }));
  });

  it('caps a download at the connection bandwidth, streaming every byte', async () => {
    const { proxy } = await start(0, 25 * MB);
    const { ms, value } = await timed(async () =>
      Buffer.from(await (await client(proxy.host).request({ method: 'GET', path: '/big' })).body.arrayBuffer()),
    );
    expect(value.equals(BODY)).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(150); // 5 MB at 25 MB/s is 200 ms
    expect(proxy.stats.bytesDown).toBe(BODY.length);
  });

  it('caps an upload at the connection bandwidth', async () => {
    const { proxy } = await start(0, 25 * MB);
    const { ms, value } = await timed(async () =>
      (await client(proxy.host).request({ method: 'PUT', path: '/upload', body: BODY })).body.text(),
    );
    expect(value).toBe(String(BODY.length));
    expect(ms).toBeGreaterThanOrEqual(150);
    expect(proxy.stats.bytesUp).toBe(BODY.length);
  });

  it('caps each connection on its own: two at once each take the time of one', async () => {
    const { proxy } = await start(0, 25 * MB);
    const one = () =>
      timed(
        async () =>
          (await (await client(proxy.host).request({ method: 'GET', path: '/big' })).body.arrayBuffer()).byteLength,
      );
    const [a, b] = await Promise.all([one(), one()]);
    expect([a.value, b.value]).toEqual([BODY.length, BODY.length]);
    expect(a.ms).toBeGreaterThanOrEqual(150);
    expect(b.ms).toBeGreaterThanOrEqual(150);
    expect(proxy.stats.connections).toBe(2);
  });

  it('keeps a connection in step across HEAD, 204, chunked answers and chunked uploads', async () => {
    const { proxy } = await start(0, 100 * MB);
    const c = client(proxy.host);
    const head = await c.request({ method: 'HEAD', path: '/big' });
    await head.body.dump();
    expect(head.headers['content-length']).toBe(String(BODY.length));
    const empty = await c.request({ method: 'DELETE', path: '/empty' });
    await empty.body.dump();
    const chunked = Buffer.from(await (await c.request({ method: 'GET', path: '/chunked' })).body.arrayBuffer());
    expect(chunked.equals(BODY)).toBe(true);
    // a body of unknown length goes out with Transfer-Encoding: chunked
    const parts = Readable.from(Array.from({ length: 5 }, (_, i) => BODY.subarray(i * MB, (i + 1) * MB)));
    const up = await (await c.request({ method: 'PUT', path: '/upload', body: parts })).body.text();
    expect(up).toBe(String(BODY.length));
    const small = await (await c.request({ method: 'GET', path: '/small' })).body.text();
    expect(small).toBe(`host=${proxy.host}`);
    expect(proxy.stats.log.map((e) => `${e.method} ${e.path} ${e.status}`)).toEqual([
      'HEAD /big 200',
      'DELETE /empty 204',
      'GET /chunked 200',
      'PUT /upload 201',
      'GET /small 200',
    ]);
    expect(proxy.stats.bytesUp).toBe(BODY.length);
    expect(proxy.stats.bytesDown).toBe(BODY.length + small.length + up.length);
  });

  it('delivers a throttled answer whole when the server closes right after sending it (Connection: close, as skopeo asks)', async () => {
    const { proxy } = await start(0, 25 * MB);
    const res = await client(proxy.host).request({ method: 'GET', path: '/close', headers: { connection: 'close' } });
    expect(Buffer.from(await res.body.arrayBuffer()).equals(BODY)).toBe(true);
  });

  it('passes Host unchanged, so Locations built from it point back through the proxy', async () => {
    const { proxy } = await start(0, 100 * MB);
    const res = await client(proxy.host).request({ method: 'POST', path: '/uploads/' });
    await res.body.dump();
    expect(res.headers.location).toBe(`http://${proxy.host}/v2/uploads/abc?_state=x`);
  });
});
