/**
 * Reading answer bodies with bounds: at most so many bytes, and at least a minimum rate.
 *
 * undici's `bodyTimeout` ends a body that stops (no byte for the idle time), but a body that trickles a
 * byte every few seconds resets it forever. `RateWatch` closes that hole: once a body has been read for
 * a window (30 s by default), the bytes of the last window must average `minBytesPerSecond`, or the body
 * is destroyed with a TimeoutError.
 */
import type { Dispatcher } from 'undici';
import { TimeoutError } from '../errors.js';
import { DEFAULT_IDLE_MS, DEFAULT_MIN_BYTES_PER_SECOND } from '../http-policy.js';

export type Body = Dispatcher.ResponseData['body'];

export interface Timeouts {
  /** No answer headers, or no body byte, for this long ends a request (REQUEST_TIMEOUT_SECONDS). */
  readonly idleMs: number;
  /** Bodies slower than this over a window end (MIN_BYTES_PER_SECOND). */
  readonly minBytesPerSecond: number;
  /** The window the rate is averaged over. */
  readonly rateWindowMs: number;
}

/** The window a body's rate is averaged over. */
export const RATE_WINDOW_MS = 30_000;

/** The request deadlines of lib/http-policy.ts, as registry and Azure requests take them. */
export const DEFAULT_TIMEOUTS: Timeouts = {
  idleMs: DEFAULT_IDLE_MS,
  minBytesPerSecond: DEFAULT_MIN_BYTES_PER_SECOND,
  rateWindowMs: RATE_WINDOW_MS,
};

/** Time a body of `bytes` may take at the minimum rate, plus the idle allowance (for request bodies). */
export function bodyDeadlineMs(t: Timeouts, bytes: number): number {
  return t.idleMs + Math.ceil((bytes / Math.max(1, t.minBytesPerSecond)) * 1000);
}

/** Watches one body: call `seen(n)` per chunk, `stop()` when done. Destroys the body when it is too slow. */
export class RateWatch {
  private total = 0;
  private readonly samples: { at: number; total: number }[] = [];
  private timer: NodeJS.Timeout;

  constructor(
    private readonly body: Body,
    private readonly t: Timeouts,
    private readonly what: string,
  ) {
    const start = Date.now();
    this.samples.push({ at: start, total: 0 });
    this.timer = setInterval(() => this.check(), Math.max(50, Math.floor(t.rateWindowMs / 6)));
    this.timer.unref();
  }

  seen(bytes: number): void {
    this.total += bytes;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The reader waits on its own (no room for the bytes): that time is not the body's, the window starts
   * again once it reads on. */
  async pausedWhile(wait: Promise<void>): Promise<void> {
    clearInterval(this.timer);
    try {
      await wait;
    } finally {
      this.samples.splice(0, this.samples.length, { at: Date.now(), total: this.total });
      this.timer = setInterval(() => this.check(), Math.max(50, Math.floor(this.t.rateWindowMs / 6)));
      this.timer.unref();
    }
  }

  private check(): void {
    const now = Date.now();
    this.samples.push({ at: now, total: this.total });
    // the newest sample at least a window old
    let base: { at: number; total: number } | undefined;
    while (this.samples.length > 1 && this.samples[1]!.at <= now - this.t.rateWindowMs) this.samples.shift();
    if (this.samples[0]!.at <= now - this.t.rateWindowMs) base = this.samples[0];
    if (!base) return;
    const seconds = (now - base.at) / 1000;
    const rate = (this.total - base.total) / seconds;
    if (rate < this.t.minBytesPerSecond) {
      this.stop();
      this.body.destroy(
        new TimeoutError(
          `${this.what}: the body arrived at ${Math.round(rate)} bytes/s over the last ${Math.round(seconds)} s, below the minimum of ${this.t.minBytesPerSecond} (MIN_BYTES_PER_SECOND)`,
        ),
      );
    }
  }
}

/** Reads a body as text, at most `limit` bytes (the rest is dropped), at the minimum rate. */
export async function readText(
  body: Body,
  limit: number,
  t: Timeouts = DEFAULT_TIMEOUTS,
  what = 'a response',
): Promise<string> {
  return (await readAll(body, limit, t, what)).subarray(0, limit).toString('utf8');
}

/** Reads a body whole up to `limit` bytes; stops reading as soon as it has `limit` (the caller checks length). */
export async function readAll(
  body: Body,
  limit: number,
  t: Timeouts = DEFAULT_TIMEOUTS,
  what = 'a response',
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  const watch = new RateWatch(body, t, what);
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      watch.seen(b.length);
      chunks.push(b);
      size += b.length;
      if (size >= limit) {
        body.destroy();
        break;
      }
    }
  } finally {
    watch.stop();
  }
  return Buffer.concat(chunks, size);
}

/**
 * Hands body bytes `skip .. skip + want` to `sink` as they arrive, as views of the received chunks (no
 * copies), and returns how many body bytes from `skip` on it saw: `want` when the body fits exactly,
 * less when it is short, more when it is long (it stops at the first byte too many). With `dropRest` it
 * stops as soon as it has `want` bytes and drops the connection's remainder (a full-body answer to a
 * range request): then only a short body shows. A sink that returns a promise is waited for before the
 * body is read on (backpressure: the connection waits, and so does the minimum rate).
 */
export async function forEachRange(
  body: Body,
  skip: number,
  want: number,
  dropRest: boolean,
  sink: (chunk: Buffer) => void | Promise<void>,
  t: Timeouts,
  what: string,
): Promise<number> {
  let pos = 0;
  let filled = 0;
  let extra = 0;
  const watch = new RateWatch(body, t, what);
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      watch.seen(b.length);
      const from = Math.min(b.length, Math.max(0, skip - pos));
      const n = Math.min(b.length - from, want - filled);
      if (n > 0) {
        const waiting = sink(from === 0 && n === b.length ? b : b.subarray(from, from + n));
        filled += n;
        if (waiting) await watch.pausedWhile(waiting);
      }
      extra += b.length - from - n;
      pos += b.length;
      if (filled === want && (dropRest || extra > 0)) {
        body.destroy();
        break;
      }
    }
  } finally {
    watch.stop();
  }
  return dropRest ? filled : filled + extra;
}

/** Discards a body (error answers, HEADs), at most `limit` bytes; never throws. */
export async function discard(body: Body, limit = 64 * 1024): Promise<void> {
  await body.dump({ limit }).catch(() => undefined);
}
