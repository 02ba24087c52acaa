/**
 * Reading one blob from the source as closed ranged GETs ("parts"), several at once and ahead of the
 * upload: one connection is capped by distance, several are not. Parts arrive out of order and are
 * handed out in order. The reader owns the buffers they land in: it lends them to the upload and takes
 * them back itself (`PartStream.release`), and the memory of all blobs copied at once is bounded by one
 * shared `PartBudget` of part slots and pooled buffers.
 *
 * Each part's GET is retried here, under the part policy, and nowhere else (the transport sends it
 * once): a failing part costs at most the policy's attempts.
 */
import { AbortedError, onSide } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { RegistryClient } from '../oci/registry.js';
import { NO_RETRY, retry, type RetryPolicy } from '../retry.js';
import type { EngineEvents } from './types.js';

/** Bytes per ranged GET by default: the first bytes of a blob arrive after one part's transfer
 * time, and no connection idles long. */
export const DEFAULT_PART_SIZE = 4 * 1024 * 1024;

/**
 * Part slots and part buffers shared by every blob copied at once (one engine, or one queue-worker
 * process): a slot is one part being fetched, or fetched and not yet handed to the upload. This bounds
 * memory and connections however many blobs run in parallel. A reader that finds no slot is woken when
 * one frees up (no deadlock: every slot held belongs to a part its upload will take, in order).
 *
 * Buffers are pooled: a fresh multi-MiB buffer per part makes V8 free hundreds of MB of external memory
 * in full collections (slower than the hashing, and the RSS balloons); recycled ones cost nothing.
 */
/** Buffers smaller than this are left to the garbage collector rather than pooled. */
const MIN_POOLED_BYTES = 64 * 1024;

export class PartBudget {
  private used = 0;
  private readonly waiting = new Set<() => void>();
  private readonly free = new Map<number, ArrayBuffer[]>();
  private pooled = 0;

  constructor(readonly slots: number, private readonly maxPooledBytes = 64 * 1024 * 1024) {}

  tryAcquire(wake: () => void): boolean {
    if (this.used < this.slots) {
      this.used++;
      this.waiting.delete(wake);
      return true;
    }
    this.waiting.add(wake);
    return false;
  }

  /** Frees a slot and wakes every waiting reader — later, never inside the caller (which may be a
   * reader in the middle of moving its position). Whoever finds no room waits again. */
  release(): void {
    this.used--;
    const woken = [...this.waiting];
    this.waiting.clear();
    for (const wake of woken) queueMicrotask(wake);
  }

  forget(wake: () => void): void {
    this.waiting.delete(wake);
  }

  /** A buffer of `size` bytes (not zeroed: a part fills it whole or is thrown away), recycled when one is free. */
  take(size: number): Buffer {
    const ab = this.free.get(size)?.pop();
    if (!ab) return Buffer.allocUnsafeSlow(size);
    this.pooled -= size;
    return Buffer.from(ab);
  }

  /** Takes back a buffer from `take` (any view of it) that nothing reads or writes any more. */
  give(data: Buffer): void {
    const ab = data.buffer;
    // small ones are not worth keeping (a small blob's only part)
    if (!(ab instanceof ArrayBuffer) || ab.byteLength < MIN_POOLED_BYTES || this.pooled + ab.byteLength > this.maxPooledBytes) return;
    let list = this.free.get(ab.byteLength);
    if (!list) this.free.set(ab.byteLength, (list = []));
    list.push(ab);
    this.pooled += ab.byteLength;
  }
}

export interface PartReaderOptions {
  readonly source: RegistryClient;
  readonly repository: string;
  readonly digest: Digest;
  readonly size: number;
  /** Part GETs in flight at most. */
  readonly concurrency: number;
  readonly partSize?: number;
  readonly budget: PartBudget;
  /** Attempts of one part's GET. */
  readonly retry: RetryPolicy;
  readonly signal?: AbortSignal;
  readonly events?: EngineEvents;
  /**
   * Whether the upload will still want the part starting at `offset` in this step (parts it will not
   * upload are not fetched). Parts of the chunk being uploaded are always wanted.
   */
  readonly wanted?: (offset: number) => boolean;
}

/** A part handed out: its bytes, lent until `release()`. */
export interface Part {
  readonly data: Buffer;
  release(): void;
}

/**
 * Bytes `[start, end)` as parts in order, for a request body. A buffer is reused once the body's writer
 * has pulled two buffers more (undici pulls the next item only when the socket took the previous one
 * whole, and a part is larger than a socket's buffer); the last two wait for `release()`, called when
 * the request has ended. Without it (a failed request: a dead socket may still hold them) they are left
 * to the garbage collector, never reused.
 */
export interface PartStream {
  readonly chunks: AsyncIterable<Buffer>;
  release(): void;
}

interface Fetch {
  readonly start: number;
  readonly buffer: Buffer;
  /** Handed to the caller: its buffer is the caller's to give back. */
  taken: boolean;
  readonly done: Promise<Buffer>;
  /** Settles (never rejects) when the GET writing into the buffer has ended. */
  readonly settled: Promise<void>;
}

/**
 * Parts of one blob, in order. A part starts at a part boundary and ends `partSize` further, at the end
 * of the chunk being uploaded (set with `chunk`), or at the end of the blob. Reads move forward; a read
 * elsewhere (a session restarted from 0) drops what was fetched and starts over there.
 *
 * The fetching is a slow start: two parts, then one more each time a part arrives, up to `concurrency`
 * (on a saturated machine all parts at once would delay the first). It stays within `concurrency + 1`
 * parts ahead of the read position.
 */
export class PartReader {
  readonly partSize: number;
  private readonly fetches = new Map<number, Fetch>();
  private inFlight = 0;
  private limit = 2;
  /** Offset of the next part to fetch. */
  private next = 0;
  /** Where the caller reads now. */
  private cursor = 0;
  private chunkEnd = 0;
  private chunkLength = Infinity;
  private closed = false;
  /** Reads waiting for their part to start (no free slot yet). */
  private waiters: { start: number; resolve(f: Fetch): void; reject(e: unknown): void }[] = [];
  private warnedNoRange = false;
  private readonly partRetry: RetryPolicy;

  constructor(private readonly o: PartReaderOptions) {
    this.partSize = o.partSize ?? DEFAULT_PART_SIZE;
    this.partRetry = { ...NO_RETRY, maxRetryAfterMs: o.retry.maxRetryAfterMs };
  }

  /**
   * The upload sends `[start, end)` next, and later chunks of `length` bytes each: parts never cross a
   * chunk's end. A chunk elsewhere than where the fetching stands drops what was fetched.
   */
  chunk(start: number, end: number, length: number): void {
    if (!this.fetches.has(start) && start !== this.next) this.restartAt(start);
    this.chunkEnd = end;
    this.chunkLength = length;
    this.cursor = start;
    this.fill();
  }

  /** End of the part starting at `at`: a part size further, but not past a chunk's end or the blob's. */
  partEnd(at: number): number {
    let boundary = this.chunkEnd;
    if (at >= boundary) {
      boundary = Number.isFinite(this.chunkLength)
        ? boundary + Math.ceil((at - boundary + 1) / this.chunkLength) * this.chunkLength
        : this.o.size;
    }
    return Math.min(at + this.partSize, boundary, this.o.size);
  }

  /** The part starting at `start` (a part boundary of the current chunk), lent until released. */
  async part(start: number): Promise<Part> {
    const data = await this.take(start);
    return { data, release: () => this.o.budget.give(data) };
  }

  /** `[start, end)` in order, as a request body (see PartStream). `first` is the part at `start`, already read. */
  stream(start: number, end: number, first?: Buffer): PartStream {
    const lent: Buffer[] = [];
    let released = false;
    const give = (b: Buffer): void => this.o.budget.give(b);
    const take = (at: number): Promise<Buffer> => this.take(at);
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let at = start; at < end;) {
        const part = at === start && first ? first : await take(at);
        lent.push(part);
        while (lent.length > 2) give(lent.shift()!);
        at += part.length;
        yield part;
      }
    }
    return {
      chunks: chunks(),
      release: () => {
        if (released) return;
        released = true;
        for (const b of lent.splice(0)) give(b);
      },
    };
  }

  close(): void {
    this.closed = true;
    this.o.budget.forget(this.wake);
    for (const k of [...this.fetches.keys()]) this.drop(k);
    this.dropWaiters('the blob copy ended');
  }

  private async take(start: number): Promise<Buffer> {
    if (!this.fetches.has(start) && start !== this.next) this.restartAt(start);
    for (const k of [...this.fetches.keys()]) if (k < start) this.drop(k);
    this.cursor = start;
    this.fill();
    const fetch = this.fetches.get(start) ?? await new Promise<Fetch>((resolve, reject) => this.waiters.push({ start, resolve, reject }));
    fetch.taken = true;
    try {
      return await fetch.done;
    } finally {
      // handed over (or failed): its slot goes to the parts ahead
      if (this.fetches.get(start) === fetch) this.forget(start);
    }
  }

  /** Reads still waiting for a part that will not come (a request body abandoned by a failed PATCH). */
  private dropWaiters(why: string): void {
    for (const w of this.waiters.splice(0)) w.reject(new AbortedError(`part at ${w.start} no longer read: ${why}`));
  }

  private readonly wake = (): void => this.fill();

  private restartAt(start: number): void {
    for (const k of [...this.fetches.keys()]) this.drop(k);
    this.dropWaiters(`reading moved to ${start}`);
    this.next = start;
    this.cursor = start;
  }

  /** Forgets a part nobody took; its buffer is reused once its GET stops writing into it. */
  private drop(k: number): void {
    const f = this.fetches.get(k)!;
    this.forget(k);
    if (!f.taken) void f.settled.then(() => this.o.budget.give(f.buffer));
  }

  private forget(k: number): void {
    if (this.fetches.delete(k)) this.o.budget.release();
  }

  /** Starts part GETs while there is room: in flight < limit, a slot, and within the window. */
  private fill(): void {
    const windowEnd = Math.min(this.o.size, this.cursor + (this.o.concurrency + 1) * this.partSize);
    while (!this.closed && this.inFlight < this.limit && this.next < windowEnd) {
      const start = this.next;
      if (start >= this.chunkEnd && this.o.wanted && !this.o.wanted(start)) return;
      if (!this.o.budget.tryAcquire(this.wake)) return;
      this.startFetch(start, this.partEnd(start));
    }
  }

  private startFetch(start: number, end: number): void {
    this.next = end;
    this.inFlight++;
    const buffer = this.o.budget.take(end - start);
    let settle!: () => void;
    const settled = new Promise<void>((res) => (settle = res));
    const done = this.fetch(start, end - 1, buffer).then(() => buffer.subarray(0, end - start));
    done.catch(() => undefined); // observed when read; a part dropped by close() must not crash the process
    const fetch: Fetch = { start, buffer, taken: false, done, settled };
    this.fetches.set(start, fetch);
    for (const w of this.waiters.filter((x) => x.start === start)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(fetch);
    }
    void done.finally(() => {
      settle();
      this.inFlight--;
      this.limit = Math.min(this.o.concurrency, this.limit + 1);
      this.fill();
    }).catch(() => undefined);
  }

  private async fetch(start: number, end: number, into: Buffer): Promise<void> {
    const { rangeHonoured } = await retry(async () => {
      try {
        return await this.o.source.getBlobRange(this.o.repository, this.o.digest, start, end, into, { signal: this.o.signal, retry: this.partRetry });
      } catch (err) {
        throw onSide(err, 'source');
      }
    }, this.o.retry, { signal: this.o.signal });
    if (!rangeHonoured && !this.warnedNoRange) {
      this.warnedNoRange = true;
      this.o.events?.onNotice?.(`${this.o.source.registry} ignores Range for ${this.o.digest}: each part streams the blob from its start`);
    }
  }
}
