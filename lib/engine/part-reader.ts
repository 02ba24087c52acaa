/**
 * Reading one blob from the source as closed ranged GETs ("parts"), several at once and ahead of the
 * upload: one connection is capped by distance, several are not. Parts arrive out of order and are
 * handed out in order; each lands in a recycled buffer, and the memory of all blobs copied at once is
 * bounded by one shared budget of part slots.
 */
import { isTemporary } from '../oci/errors.js';
import type { Digest } from '../oci/digest.js';
import type { RegistryClient } from '../oci/registry.js';
import { backoffDelay, DEFAULT_RETRY, sleep } from '../oci/retry.js';
import type { EngineEvents } from './types.js';

/** Bytes per ranged GET by default: the first bytes of a blob arrive after one part's transfer
 * time, and no connection idles long. */
export const DEFAULT_PART_SIZE = 4 * 1024 * 1024;
/** Attempts per part GET (temporary failures: resets, short bodies, 5xx after the transport's own retries). */
const PART_FETCH_ATTEMPTS = 4;

/**
 * Part buffers for reuse. A fresh multi-MiB buffer per part makes V8 free hundreds of MB of external
 * memory in full collections (slower than the hashing, and the RSS balloons); recycled ones cost
 * nothing. Only buffers nothing reads any more may be given back (see PartReader.release).
 */
class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private retained = 0;

  constructor(private readonly maxBytes: number) {}

  take(size: number): Buffer {
    const ab = this.free.get(size)?.pop();
    if (ab) this.retained -= size;
    return Buffer.from(ab ?? new ArrayBuffer(size));
  }

  /** Gives back the buffer under `data` (a view of a buffer from `take`). */
  give(data: Buffer): void {
    const ab = data.buffer;
    if (!(ab instanceof ArrayBuffer) || this.retained + ab.byteLength > this.maxBytes) return;
    let list = this.free.get(ab.byteLength);
    if (!list) this.free.set(ab.byteLength, (list = []));
    list.push(ab);
    this.retained += ab.byteLength;
  }
}

const pool = new BufferPool(64 * 1024 * 1024);

/**
 * Part slots shared by every blob copied at once (one engine, or one queue-worker process): a slot is
 * one part being fetched, or fetched and not yet handed to the upload. This bounds memory and
 * connections however many blobs run in parallel. A reader that finds no slot is woken when one
 * frees up (no deadlock: every slot held belongs to a part its upload will take, in order).
 */
export class FetchSlots {
  private used = 0;
  private readonly waiting = new Set<() => void>();

  constructor(readonly size: number) {}

  tryAcquire(wake: () => void): boolean {
    if (this.used < this.size) {
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
}

export interface PartReaderOptions {
  readonly source: RegistryClient;
  readonly repository: string;
  readonly digest: Digest;
  readonly size: number;
  /** Part GETs in flight at most. */
  readonly concurrency: number;
  readonly partSize?: number;
  readonly slots?: FetchSlots;
  readonly events?: EngineEvents;
  /**
   * Whether the upload will still want the part starting at `offset` in this step (parts it will not
   * upload are not fetched). Parts of the segment being uploaded are always wanted.
   */
  readonly wanted?: (offset: number) => boolean;
}

interface Part {
  readonly start: number;
  readonly buffer: Buffer;
  /** Handed to the caller by `read`: its buffer is the caller's to release. */
  taken: boolean;
  readonly done: Promise<Buffer>;
  /** Settles (never rejects) when the GET writing into the buffer has ended. */
  readonly settled: Promise<void>;
}

/**
 * Parts of one blob, in order. `read(offset)` returns the part that starts there — `[offset, end)`
 * where `end` is the next part boundary: `partSize` further, the end of the segment being uploaded
 * (set with `segment`), or the end of the blob. Reads move forward; a read elsewhere (a session
 * restarted from 0) drops what was fetched and starts over there.
 *
 * The fetching is a slow start: two parts, then one more each time a part arrives, up to
 * `concurrency` (on a saturated machine all parts at once would delay the first). It stays within
 * `concurrency + 1` parts ahead of the read position.
 */
export class PartReader {
  private readonly parts = new Map<number, Part>();
  private readonly partSize: number;
  private inFlight = 0;
  private limit = 2;
  /** Offset of the next part to fetch. */
  private next = 0;
  /** Where the caller reads now. */
  private cursor = 0;
  private segmentStart = 0;
  private segmentEnd = 0;
  private segmentLength = Infinity;
  private closed = false;
  /** Reads waiting for their part to start (no free slot yet). */
  private waiters: { start: number; resolve(p: Part): void; reject(e: unknown): void }[] = [];
  private warnedNoRange = false;

  constructor(private readonly o: PartReaderOptions) {
    this.partSize = o.partSize ?? DEFAULT_PART_SIZE;
  }

  /**
   * The upload sends `[start, end)` next, and later segments of `length` bytes each: parts never
   * cross a segment's end. A segment elsewhere than where the fetching stands drops what was fetched.
   */
  segment(start: number, end: number, length: number): void {
    if (!this.parts.has(start) && start !== this.next) this.restartAt(start);
    this.segmentStart = start;
    this.segmentEnd = end;
    this.segmentLength = length;
    this.cursor = start;
    this.fill();
  }

  /** The part starting at `start` (a part boundary in the current segment). */
  async read(start: number): Promise<Buffer> {
    if (!this.parts.has(start) && start !== this.next) this.restartAt(start);
    for (const k of [...this.parts.keys()]) if (k < start) this.drop(k);
    this.cursor = start;
    this.fill();
    const part = this.parts.get(start) ?? await new Promise<Part>((resolve, reject) => this.waiters.push({ start, resolve, reject }));
    part.taken = true;
    try {
      return await part.done;
    } finally {
      // handed over (or failed): its slot goes to the parts ahead
      if (this.parts.get(start) === part) this.forgetPart(start);
    }
  }

  /**
   * The caller is done with a buffer `read` returned: nothing reads it any more (its request ended,
   * or the request's writer has moved on to a later buffer: see copy-blob's body). It is reused.
   */
  release(data: Buffer): void {
    pool.give(data);
  }

  close(): void {
    this.closed = true;
    this.o.slots?.forget(this.wake);
    for (const k of [...this.parts.keys()]) this.drop(k);
    this.dropWaiters('the blob copy ended');
  }

  /** Reads still waiting for a part that will not come (a request body abandoned by a failed PATCH). */
  private dropWaiters(why: string): void {
    for (const w of this.waiters.splice(0)) w.reject(new Error(`part at ${w.start} no longer read: ${why}`));
  }

  private readonly wake = (): void => this.fill();

  private restartAt(start: number): void {
    for (const k of [...this.parts.keys()]) this.drop(k);
    this.dropWaiters(`reading moved to ${start}`);
    this.next = start;
    this.cursor = start;
  }

  /** Forgets a part nobody took; its buffer is reused once its GET stops writing into it. */
  private drop(k: number): void {
    const p = this.parts.get(k)!;
    this.forgetPart(k);
    if (!p.taken) void p.settled.then(() => pool.give(p.buffer));
  }

  private forgetPart(k: number): void {
    if (this.parts.delete(k)) this.o.slots?.release();
  }

  /** End of the part starting at `at`: a part size further, but not past a segment's end or the blob's. */
  private partEnd(at: number): number {
    let boundary = this.segmentEnd;
    if (at >= boundary) {
      boundary = Number.isFinite(this.segmentLength)
        ? boundary + Math.ceil((at - boundary + 1) / this.segmentLength) * this.segmentLength
        : this.o.size;
    }
    return Math.min(at + this.partSize, boundary, this.o.size);
  }

  /** Starts part GETs while there is room: in flight < limit, a slot, and within the window. */
  private fill(): void {
    const windowEnd = Math.min(this.o.size, this.cursor + (this.o.concurrency + 1) * this.partSize);
    while (!this.closed && this.inFlight < this.limit && this.next < windowEnd) {
      const start = this.next;
      if (start >= this.segmentEnd && this.o.wanted && !this.o.wanted(start)) return;
      if (this.o.slots && !this.o.slots.tryAcquire(this.wake)) return;
      const end = this.partEnd(start);
      this.next = end;
      this.inFlight++;
      const buffer = pool.take(this.partSize);
      let settle!: () => void;
      const settled = new Promise<void>((res) => (settle = res));
      const done = this.fetch(start, end - 1, buffer).then(() => buffer.subarray(0, end - start));
      done.catch(() => undefined); // observed when read; a part dropped by close() must not crash the process
      const part: Part = { start, buffer, taken: false, done, settled };
      this.parts.set(start, part);
      for (const w of this.waiters.filter((x) => x.start === start)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(part);
      }
      void done.finally(() => {
        settle();
        this.inFlight--;
        this.limit = Math.min(this.o.concurrency, this.limit + 1);
        this.fill();
      }).catch(() => undefined);
    }
  }

  private async fetch(start: number, end: number, into: Buffer): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { rangeHonoured } = await this.o.source.getBlobRange(this.o.repository, this.o.digest, start, end, into);
        if (!rangeHonoured && !this.warnedNoRange) {
          this.warnedNoRange = true;
          this.o.events?.onNotice?.(`${this.o.source.registry} ignores Range for ${this.o.digest}: each part streams the blob from its start`);
        }
        return;
      } catch (err) {
        if (!isTemporary(err) || attempt >= PART_FETCH_ATTEMPTS) throw err;
        await sleep(backoffDelay(DEFAULT_RETRY, attempt));
      }
    }
  }
}
