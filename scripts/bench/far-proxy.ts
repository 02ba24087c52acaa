/**
 * A far-away registry on loopback: a forward to `target` (host:port) that waits `latencyMs` before
 * forwarding every request and caps every client connection at `bytesPerSecond` in each direction (a
 * token bucket per connection and direction: N connections get N × the cap, as over a long link where
 * one TCP connection is limited by its round trip, not by the network).
 *
 * It works on the byte streams: each client connection gets its own connection to the target, and a
 * small HTTP/1.1 framer (Content-Length, chunked, HEAD, 1xx, 204/304) only finds where every request
 * and response begins, to hold each request for the latency, log it and count body bytes. Bodies stream
 * through with backpressure (nothing is buffered whole) and keep-alive works end to end. Nothing is
 * rewritten: the `Host` header passes unchanged, so distribution builds its upload `Location`s for the
 * proxy. Forwarding bytes instead of re-parsing and re-writing HTTP costs about half the CPU, and this
 * proxy shares the machine with the tools it measures.
 */
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';

export interface FarProxyOptions {
  /** `host:port` of the server behind the proxy (loopback). */
  readonly target: string;
  /** Added before every request is forwarded. */
  readonly latencyMs: number;
  /** Cap of each client connection, per direction. */
  readonly bytesPerSecond: number;
  /** Bytes a connection may send at once after being idle (default 64 KiB, about one socket read). */
  readonly burstBytes?: number;
}

export interface FarProxyStats {
  /** Client connections accepted. */
  connections: number;
  requests: number;
  /** Request body bytes forwarded to the target. */
  bytesUp: number;
  /** Response body bytes forwarded to clients. */
  bytesDown: number;
  /** Every request, in arrival order, with the status of its answer once it came (tests count what a client asked for). */
  log: { method: string; path: string; status?: number }[];
}

export interface FarProxy {
  /** `127.0.0.1:PORT` — use it wherever the target's host would go. */
  readonly host: string;
  readonly stats: FarProxyStats;
  close(): Promise<void>;
}

const MAX_HEAD = 64 * 1024;
/** Bytes queued in a direction before the proxy stops reading from its source. */
const HIGH_WATER = 1024 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n');

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A token bucket that may run into debt: `take` says how long to wait until the debt is paid. */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();
  private readonly perMs: number;

  constructor(
    bytesPerSecond: number,
    private readonly burst: number,
  ) {
    this.perMs = bytesPerSecond / 1000;
    this.tokens = burst;
  }

  take(n: number): number {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.perMs) - n;
    this.last = now;
    return this.tokens >= 0 ? 0 : -this.tokens / this.perMs;
  }
}

/** How a message's body is delimited, decided from its head. */
type Framing = number | 'chunked' | 'close';

/**
 * Finds message boundaries in one direction of an HTTP/1.1 connection, incrementally. `split` cuts a
 * chunk of bytes where messages begin; `onHead` sees every complete head and says how its body is
 * delimited; `onBody` counts body bytes.
 */
class Framer {
  private state: 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-end' | 'trailer' | 'close' = 'head';
  private head: Buffer[] = [];
  private headLength = 0;
  private remaining = 0;
  private line = '';

  constructor(
    private readonly onHead: (head: string) => Framing,
    private readonly onBody: (n: number) => void,
  ) {}

  /** The chunk in pieces; `start` marks a piece that begins a new message. */
  split(chunk: Buffer): { data: Buffer; start: boolean }[] {
    const pieces: { data: Buffer; start: boolean }[] = [];
    let from = 0;
    let start = false;
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'head' && this.headLength === 0) {
        // a new message begins here
        if (i > from) pieces.push({ data: chunk.subarray(from, i), start });
        from = i;
        start = true;
      }
      switch (this.state) {
        case 'head': {
          const end = this.findHeadEnd(chunk, i);
          if (end < 0) {
            this.head.push(chunk.subarray(i));
            this.headLength += chunk.length - i;
            if (this.headLength > MAX_HEAD) throw new Error('HTTP head larger than 64 KiB');
            i = chunk.length;
          } else {
            this.head.push(chunk.subarray(i, end));
            const text = Buffer.concat(this.head).toString('latin1');
            this.head = [];
            this.headLength = 0;
            i = end;
            this.begin(this.onHead(text));
          }
          break;
        }
        case 'length':
        case 'chunk-data': {
          const n = Math.min(this.remaining, chunk.length - i);
          this.onBody(n);
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = this.state === 'length' ? 'head' : 'chunk-end';
          break;
        }
        case 'close':
          this.onBody(chunk.length - i);
          i = chunk.length;
          break;
        default: {
          // chunk-size, chunk-end, trailer: line by line
          const nl = chunk.indexOf(10, i);
          const stop = nl < 0 ? chunk.length : nl + 1;
          this.line += chunk.toString('latin1', i, stop);
          i = stop;
          if (nl < 0) break;
          const line = this.line.trim();
          this.line = '';
          if (this.state === 'chunk-end') this.state = 'chunk-size';
          else if (this.state === 'chunk-size') {
            const size = parseInt(line.split(';')[0]!, 16);
            if (!Number.isFinite(size)) throw new Error(`bad chunk size line "${line}"`);
            if (size === 0) this.state = 'trailer';
            else {
              this.remaining = size;
              this.state = 'chunk-data';
            }
          } else if (line === '') this.state = 'head'; // the blank line after the trailers ends the message
        }
      }
    }
    if (chunk.length > from) pieces.push({ data: chunk.subarray(from), start });
    return pieces;
  }

  /** Index just after the head's blank line, searching from `i` (the head may span chunks), or -1. */
  private findHeadEnd(chunk: Buffer, i: number): number {
    const carried = this.head.length ? Buffer.concat(this.head).subarray(-3) : Buffer.alloc(0);
    const window = carried.length
      ? Buffer.concat([carried, chunk.subarray(i, i + MAX_HEAD)])
      : chunk.subarray(i, i + MAX_HEAD);
    const at = window.indexOf(CRLFCRLF);
    return at < 0 ? -1 : i + at + 4 - carried.length;
  }

  private begin(framing: Framing): void {
    if (framing === 'chunked') this.state = 'chunk-size';
    else if (framing === 'close') this.state = 'close';
    else if (framing > 0) {
      this.remaining = framing;
      this.state = 'length';
    } else this.state = 'head';
  }
}

function headers(head: string): { first: string; get(name: string): string | undefined } {
  const lines = head.split('\r\n');
  const map = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const c = l.indexOf(':');
    if (c > 0) map.set(l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim());
  }
  return { first: lines[0] ?? '', get: (n) => map.get(n) };
}

function bodyFraming(h: ReturnType<typeof headers>, request: boolean): Framing {
  if (/\bchunked\b/i.test(h.get('transfer-encoding') ?? '')) return 'chunked';
  const cl = h.get('content-length');
  if (cl !== undefined) return Number(cl);
  return request ? 0 : 'close';
}

/** Moves bytes from one socket to the other: per-message hook, latency before each message, rate cap. */
function pump(from: Socket, to: Socket, framer: Framer, bucket: TokenBucket, latencyMs: number): void {
  const queue: Buffer[] = [];
  let queued = 0;
  let busy = false;
  const drain = async () => {
    busy = true;
    try {
      while (queue.length) {
        const chunk = queue.shift()!;
        queued -= chunk.length;
        for (const piece of framer.split(chunk)) {
          if (piece.start && latencyMs > 0) await sleep(latencyMs);
          if (!piece.data.length) continue;
          const wait = bucket.take(piece.data.length);
          if (wait > 0) await sleep(wait);
          if (to.destroyed) return;
          if (!to.write(piece.data)) {
            await new Promise((resolve) => {
              to.once('drain', resolve);
              to.once('close', resolve);
            });
          }
        }
        if (queued < HIGH_WATER && from.isPaused()) from.resume();
      }
      if (from.readableEnded && !to.destroyed) to.end();
    } catch (err) {
      from.destroy(err as Error);
      to.destroy();
    } finally {
      busy = false;
    }
  };
  from.on('data', (chunk: Buffer) => {
    queue.push(chunk);
    queued += chunk.length;
    if (queued >= HIGH_WATER) from.pause();
    if (!busy) void drain();
  });
  from.on('end', () => {
    if (!busy && !queue.length && !to.destroyed) to.end();
  });
}

export async function startFarProxy(o: FarProxyOptions): Promise<FarProxy> {
  const burst = o.burstBytes ?? 64 * 1024;
  const stats: FarProxyStats = { connections: 0, requests: 0, bytesUp: 0, bytesDown: 0, log: [] };
  const [targetHost, targetPort] = splitHost(o.target);
  const sockets = new Set<Socket>();

  const server = createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
    stats.connections++;
    // Half-open both ways: a side that is done sending (a server answering `Connection: close`, as
    // skopeo asks) must not cut off what the other direction still has queued; each pump passes the
    // end on once its queue is empty. Errors and a client gone for good end both at once.
    const upstream = connect({ host: targetHost, port: targetPort, noDelay: true, allowHalfOpen: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => (s === client ? upstream : client).destroy());
    }
    client.on('close', () => upstream.destroy());
    // Requests and their answers pair up in order (HTTP/1.1 without pipelining does not reorder).
    const waiting: { method: string; entry: FarProxyStats['log'][number] }[] = [];
    const requests = new Framer(
      (head) => {
        const h = headers(head);
        const [method = '', path = ''] = h.first.split(' ');
        const entry: FarProxyStats['log'][number] = { method, path };
        stats.requests++;
        stats.log.push(entry);
        waiting.push({ method, entry });
        return bodyFraming(h, true);
      },
      (n) => (stats.bytesUp += n),
    );
    const responses = new Framer(
      (head) => {
        const h = headers(head);
        const status = Number(h.first.split(' ')[1]);
        if (status >= 100 && status < 200) return 0; // interim: the final answer follows
        const req = waiting.shift();
        if (req) req.entry.status = status;
        return req?.method === 'HEAD' || status === 204 || status === 304 ? 0 : bodyFraming(h, false);
      },
      (n) => (stats.bytesDown += n),
    );
    pump(client, upstream, requests, new TokenBucket(o.bytesPerSecond, burst), o.latencyMs);
    pump(upstream, client, responses, new TokenBucket(o.bytesPerSecond, burst), 0);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

function splitHost(hostPort: string): [string, number] {
  const i = hostPort.lastIndexOf(':');
  if (i < 0) throw new Error(`far-proxy target must be host:port, got "${hostPort}"`);
  return [hostPort.slice(0, i), Number(hostPort.slice(i + 1))];
}
