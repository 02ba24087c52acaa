/**
 * Reading one blob from the source as closed ranged GETs ("parts"), several at once and ahead of the
 * upload: one connection is capped by distance, several are not. Parts arrive out of order and are
 * handed out in order. A part lands in pooled blocks of BLOCK_SIZE bytes, which the upload sends as they
 * fill (the part it is at streams through) and gives back one block later: memory follows the bytes
 * waiting to be sent, in steps of one block, and the blocks of all blobs copied at once are bounded by
 * one shared `PartPool`.
 *
 * Each part's GET is retried here, under the part policy, and nowhere else (the transport sends it
 * once); an attempt that failed midway is continued from the part's first missing byte, so a failing
 * part costs at most the policy's attempts and no byte is fetched twice.
 */
import { DEFAULT_COPY_MEMORY } from '../config.js';
import { AbortedError, onSide } from '../errors.js';
import type { Digest } from '../oci/digest.js';
import type { RegistryClient } from '../oci/registry.js';
import { oneAttempt, retry, type RetryPolicy } from '../retry.js';
import type { EngineEvents } from './types.js';
import { collectAllGarbage, collectYoungGarbage, FULL_GC_AFTER_BYTES, YOUNG_GC_EVERY_BYTES } from './young-gc.js';

/** Bytes per ranged GET by default: the first bytes of a blob arrive after one part's transfer
 * time, and no connection idles long. */
export const DEFAULT_PART_SIZE = 4 * 1024 * 1024;

/** Parts grow to at most this many times the part size when their connections are fast (fewer requests). */
export const MAX_PART_GROWTH = 8;
/** A part is sized for its GET to take about this long at the rate the last one came (see PartReader). */
const PART_TARGET_MS = 200;

/** Bytes per pooled block: a part is held in blocks, and the upload sends (and frees) one at a time. */
export const BLOCK_SIZE = 1024 * 1024;

/** Parts (of all blobs) fetched whole and not yet taken by their upload, beyond which no more start. */
export const DEFAULT_MAX_READY_PARTS = 2;

/**
 * Part slots and blocks shared by every blob copied at once (one engine, or one queue-worker process):
 * a slot is one part being fetched, or fetched and not yet taken by the upload. Blocks are taken as
 * bytes arrive and given back as the upload sends them. This bounds connections and memory however many
 * blobs run in parallel: blocks stay within `maxBytes` — a part whose next block does not fit stops
 * reading (its connection waits, TCP holds the sender) until blocks come back — except for the parts
 * uploads are at, which may go beyond by two blocks each: one being sent, one filling (else an upload
 * could wait on memory held by parts ahead of it or of other uploads). No deadlock: every slot belongs to
 * a part its upload will take, in order, the part an upload is at always gets a block to fill, and
 * blocks come back as they are sent.
 *
 * A part fetched whole before its upload took it ("ready") says the source outruns the target: more
 * connections would only fill memory. So no part starts while `maxReady` parts wait ready, except the
 * one an upload needs next: a copy from a near source keeps a few parts in memory, while a far source,
 * whose parts are still arriving when the upload needs them, gets every connection it is allowed.
 *
 * Blocks are pooled: a fresh buffer per part makes V8 free hundreds of MB of external memory in full
 * collections (slower than the hashing, and the RSS balloons); recycled ones cost nothing.
 */
export class PartPool {
  readonly maxBlocks: number;
  private used = 0;
  private reserved = 0;
  private readyParts = 0;
  private readonly waiting = new Set<() => void>();
  private readonly free: Buffer[] = [];
  /** Bytes arrived since the last young collection. */
  private arrived = 0;
  /** ArrayBuffer bytes beyond the blocks after the last full collection (the lowest seen since); undefined right after one. */
  private baseline: number | undefined;
  /** The process's ArrayBuffer memory could not be read: no full collections. */
  private unmeasurable = false;

  readonly maxReady: number;
  /** Bytes that arrive between two young collections (young-gc.ts). */
  readonly youngGcEveryBytes: number;
  /** Growth of ArrayBuffer memory beyond the blocks that makes a full collection (young-gc.ts); null: none. */
  readonly fullGcAfterBytes: number | null;
  private readonly collect: () => void;
  private readonly collectAll: () => void;
  private readonly arrayBufferBytes: () => number;

  constructor(
    readonly slots: number,
    maxBytes = DEFAULT_COPY_MEMORY,
    o: {
      readonly maxReady?: number;
      readonly youngGcEveryBytes?: number;
      readonly fullGcAfterBytes?: number | null;
      /** The young collection (tests count it). */
      readonly collect?: () => void;
      /** The full collection (tests count it). */
      readonly collectAll?: () => void;
      /** ArrayBuffer memory of the process (tests set it). */
      readonly arrayBufferBytes?: () => number;
    } = {},
  ) {
    this.maxReady = o.maxReady ?? DEFAULT_MAX_READY_PARTS;
    this.youngGcEveryBytes = o.youngGcEveryBytes ?? YOUNG_GC_EVERY_BYTES;
    this.fullGcAfterBytes = o.fullGcAfterBytes === undefined ? FULL_GC_AFTER_BYTES : o.fullGcAfterBytes;
    this.collect = o.collect ?? collectYoungGarbage;
    this.collectAll = o.collectAll ?? collectAllGarbage;
    this.arrayBufferBytes = o.arrayBufferBytes ?? (() => process.memoryUsage().arrayBuffers);
    this.maxBlocks = Math.max(1, Math.floor(maxBytes / BLOCK_SIZE));
  }

  /** A slot for a part; `needed`: the part an upload waits for (never held back by ready parts or memory). */
  tryAcquire(wake: () => void, needed = false): boolean {
    if (this.used < this.slots && (needed || (this.readyParts < this.maxReady && this.reserved < this.maxBlocks))) {
      this.used++;
      this.waiting.delete(wake);
      return true;
    }
    this.waiting.add(wake);
    return false;
  }

  /** Frees a slot (its blocks come back one by one). */
  release(): void {
    this.used--;
    this.wakeAll();
  }

  /**
   * A block of BLOCK_SIZE bytes (not zeroed: it is filled before it is read), recycled when one is free;
   * undefined when blocks are at `maxBytes` and `anyway` (the part an upload is at) is not set.
   */
  block(anyway: boolean): Buffer | undefined {
    if (!anyway && this.reserved >= this.maxBlocks) return undefined;
    this.reserved++;
    return this.free.pop() ?? Buffer.allocUnsafeSlow(BLOCK_SIZE);
  }

  /** Resolves when blocks may have come back, or parts changed hands (then ask `block` again). */
  room(): Promise<void> {
    return new Promise<void>((resolve) => this.waiting.add(resolve));
  }

  /** Takes back a block from `block()`: pooled when `reuse` (nothing reads or writes it any more), else
   * left to the garbage collector (a dead socket may still hold it). Either way its room is free. */
  give(block: Buffer, reuse: boolean): void {
    this.reserved--;
    if (reuse) this.free.push(block);
    this.wakeAll();
  }

  /** Wakes whoever waits: a part an upload has just taken may now take blocks beyond `maxBytes`. */
  nudge(): void {
    this.wakeAll();
  }

  /** Blocks held by parts now (for tests and logs). */
  get heldBlocks(): number {
    return this.reserved;
  }

  /** A part became ready (+1), or was taken by its upload or dropped (-1). */
  ready(delta: 1 | -1): void {
    this.readyParts += delta;
    if (delta < 0) this.wakeAll();
  }

  forget(wake: () => void): void {
    this.waiting.delete(wake);
  }

  /** Counts bytes that arrived; every `youngGcEveryBytes` the dropped socket buffers are collected (young-gc.ts). */
  arrivedBytes(n: number): void {
    this.arrived += n;
    if (this.arrived < this.youngGcEveryBytes) return;
    this.arrived = 0;
    this.collect();
    this.collectOldIfGrown();
  }

  /**
   * A full collection when ArrayBuffer memory beyond the blocks has grown by `fullGcAfterBytes` since the lowest
   * it was after the last one (young-gc.ts): dead socket buffers moved to the old generation. Measured after a
   * young collection, so what is left is old or alive; the baseline is taken again at the next measure (the freed
   * memory may only be counted once V8 has swept it).
   */
  private collectOldIfGrown(): void {
    if (this.fullGcAfterBytes === null || this.unmeasurable) return;
    let bytes: number;
    try {
      bytes = this.arrayBufferBytes();
    } catch {
      // process.memoryUsage() reads /proc: where it cannot, the copy goes on with young collections only
      this.unmeasurable = true;
      return;
    }
    // the blocks the pool keeps alive: held by parts, or free (a dropped one is the collector's)
    const beyond = bytes - (this.reserved + this.free.length) * BLOCK_SIZE;
    if (this.baseline === undefined || beyond < this.baseline) this.baseline = beyond;
    else if (beyond - this.baseline > this.fullGcAfterBytes) {
      this.collectAll();
      this.baseline = undefined;
    }
  }

  /** Wakes every waiting reader — later, never inside the caller (which may be a reader in the middle
   * of moving its position). Whoever finds no room waits again. */
  private wakeAll(): void {
    if (this.waiting.size === 0) return;
    const woken = [...this.waiting];
    this.waiting.clear();
    for (const wake of woken) queueMicrotask(wake);
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
  /** Largest part, as a multiple of the part size (default MAX_PART_GROWTH; 1: every part the part size). */
  readonly partGrowth?: number;
  readonly pool: PartPool;
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

/** A buffer lent out until `release()`: `reuse` false when a failed request may still hold it. */
export interface Lent {
  readonly data: Buffer;
  release(reuse?: boolean): void;
}

/**
 * Bytes `[start, end)` in order, as a request body, one block at a time. A block is given back once the
 * body's writer asked for the one after the next (undici asks for the next block only when the socket
 * took the last whole, or all but less than its high-water mark: the block before is then written); the
 * last ones wait for `release(reuse)`, which the caller must call when the request has ended: with
 * `reuse` false (a failed request: a dead socket may still hold them) they are left to the garbage
 * collector, never reused, and only their room in the pool comes back.
 */
export interface PartStream {
  readonly chunks: AsyncIterable<Buffer>;
  release(reuse: boolean): void;
}

/** One part: its bytes in blocks as they arrive, and the pool's blocks it holds until they are sent. */
class Part {
  /** Blocks in order, as they were filled. */
  private readonly blocks: Buffer[] = [];
  /** Which blocks came back to the pool. */
  private readonly returned: boolean[] = [];
  /** Blocks handed to a reader: given back by that reader, not by `dispose`. */
  private lentBlocks = 0;
  /** Blocks it holds (taken and not given back). */
  private held = 0;
  /** Bytes that arrived. */
  filled = 0;
  complete = false;
  failure: unknown;
  /** The upload took it (waits for it, or reads it). */
  taken = false;
  /** A reader had to wait for its bytes. */
  waited = false;
  /** Counted as ready in the pool. */
  ready = false;
  readonly stop = new AbortController();
  readonly startedAt = Date.now();
  /** Time its GET waited for room in the pool (not the source's time). */
  pausedMs = 0;
  /** Its GET's signal: the step's, or `stop`. */
  signal: AbortSignal = this.stop.signal;
  /** Settles (never rejects) when its GET has ended: no more writes into its blocks. */
  settled: Promise<void> = Promise.resolve();
  private waiters: (() => void)[] = [];

  constructor(
    readonly start: number,
    readonly end: number,
    private readonly pool: PartPool,
  ) {}

  get length(): number {
    return this.end - this.start;
  }

  /**
   * Copies arriving bytes into the blocks; a promise when the next block must wait for room (the caller
   * reads no further until it settles). Throws once the GET was stopped.
   */
  write(chunk: Buffer): void | Promise<void> {
    for (let from = 0; from < chunk.length;) {
      if (this.signal.aborted) throw new AbortedError(`part at ${this.start} no longer read`);
      const at = this.filled % BLOCK_SIZE;
      if (at === 0 && this.blocks.length * BLOCK_SIZE <= this.filled) {
        // the part an upload is at always gets a block to fill while it sends the one before
        const block = this.pool.block(this.taken && this.held < 2);
        if (!block) {
          const rest = chunk.subarray(from);
          const since = Date.now();
          return this.pool.room().then(() => {
            this.pausedMs += Date.now() - since;
            return this.write(rest);
          });
        }
        this.blocks.push(block);
        this.held++;
      }
      const n = Math.min(chunk.length - from, BLOCK_SIZE - at);
      chunk.copy(this.blocks[this.blocks.length - 1]!, at, from, from + n);
      from += n;
      this.filled += n;
      this.pool.arrivedBytes(n);
      if (at + n === BLOCK_SIZE) this.notify();
    }
  }

  settle(failure?: unknown): void {
    if (failure === undefined) this.complete = true;
    else this.failure = failure;
    this.notify();
  }

  /** Resolves once block `i` is full or the part complete (at once past its end); throws the part's failure. */
  async filledTo(i: number): Promise<void> {
    const to = Math.min((i + 1) * BLOCK_SIZE, this.length);
    while (this.filled < to) {
      if (this.failure !== undefined) throw this.failure;
      this.waited = true;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Block `i` (the bytes of it) once it is full or the part complete, lent to the caller; undefined past the end. */
  async lend(i: number): Promise<Buffer | undefined> {
    const from = i * BLOCK_SIZE;
    if (from >= this.length) return undefined;
    await this.filledTo(i);
    this.lentBlocks = Math.max(this.lentBlocks, i + 1);
    return this.blocks[i]!.subarray(0, Math.min(BLOCK_SIZE, this.length - from));
  }

  /** Block `i` comes back: reused when `reuse` (nothing reads or writes it any more), else left to the
   * garbage collector (a dead socket may still hold it). */
  giveBack(i: number, reuse = true): void {
    const b = this.blocks[i];
    if (!b || this.returned[i]) return;
    this.returned[i] = true;
    this.held--;
    this.pool.give(b, reuse);
  }

  /** Gives back the blocks never lent, once the GET has stopped writing into them. */
  dispose(): void {
    void this.settled.then(() => {
      for (let i = this.lentBlocks; i < this.blocks.length; i++) this.giveBack(i);
    });
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/**
 * Parts of one blob, in order. A part ends where the part size says, at the end of the chunk being
 * uploaded (set with `chunk`), or at the end of the blob. Reads move forward; a read elsewhere (a session
 * restarted from 0) drops what was fetched and starts over there.
 *
 * The size of the parts it fetches adapts to the source: sized for a GET of about PART_TARGET_MS at the
 * rate the last part came (its time waiting for room left out), between `partSize` and MAX_PART_GROWTH
 * times it. A far source keeps small parts on many connections (little memory for the bytes ahead); a near
 * one gets few large parts, and pays its per-request cost fewer times (a distribution registry spends
 * about 11 ms of CPU on every ranged GET: 75 of them for a 300 MiB blob in 4 MiB parts).
 *
 * How many parts it fetches at once adapts to which side is slower: two at first, one more each time the
 * upload had to wait for a part's bytes, one fewer each time a part arrives while two of this blob wait
 * ready, between one and `concurrency`. It stays within `concurrency + 1` parts ahead of the read position.
 */
export class PartReader {
  readonly partSize: number;
  private readonly parts = new Map<number, Part>();
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
  private waiters: { start: number; resolve(p: Part): void; reject(e: unknown): void }[] = [];
  private warnedNoRange = false;
  /** Size of the next part to fetch (see the class comment). */
  private fetchSize: number;

  constructor(private readonly o: PartReaderOptions) {
    this.partSize = o.partSize ?? DEFAULT_PART_SIZE;
    this.fetchSize = this.partSize;
  }

  /**
   * The upload sends `[start, end)` next, and later chunks of `length` bytes each: parts never cross a
   * chunk's end. A chunk elsewhere than where the fetching stands drops what was fetched.
   */
  chunk(start: number, end: number, length: number): void {
    if (!this.parts.has(start) && start !== this.next) this.restartAt(start);
    this.chunkEnd = end;
    this.chunkLength = length;
    this.cursor = start;
    this.fill();
  }

  /** End of a part starting at `at`: `size` further (a part size by default), but not past a chunk's end or the blob's. */
  partEnd(at: number, size = this.partSize): number {
    let boundary = this.chunkEnd;
    if (at >= boundary) {
      boundary = Number.isFinite(this.chunkLength)
        ? boundary + Math.ceil((at - boundary + 1) / this.chunkLength) * this.chunkLength
        : this.o.size;
    }
    return Math.min(at + size, boundary, this.o.size);
  }

  /** Waits until the part at `start` has its first block (the source answered), or throws its failure. */
  async firstBytes(start: number): Promise<void> {
    const part = await this.take(start);
    await part.filledTo(0);
  }

  /** The part starting at `start` (a part boundary of the current chunk) in one buffer, lent until released. */
  async part(start: number): Promise<Lent> {
    const part = await this.take(start);
    const blocks: Buffer[] = [];
    for (let i = 0, b = await part.lend(0); b; b = await part.lend(++i)) blocks.push(b);
    this.finished(part);
    if (blocks.length === 1) return { data: blocks[0]!, release: (reuse = true) => part.giveBack(0, reuse) };
    const data = Buffer.concat(blocks, part.length);
    blocks.forEach((_, i) => part.giveBack(i));
    return { data, release: () => undefined };
  }

  /** `[start, end)` in order, as a request body (see PartStream). */
  stream(start: number, end: number): PartStream {
    let lent: ((reuse: boolean) => void)[] = [];
    const take = (at: number) => this.take(at);
    const finished = (part: Part) => this.finished(part);
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let at = start; at < end;) {
        const part = await take(at);
        for (let i = 0, b = await part.lend(0); b; b = await part.lend(++i)) {
          lent.push((reuse) => part.giveBack(i, reuse));
          yield b;
          // asked for the next: the one before this is written
          while (lent.length > 1) lent.shift()!(true);
        }
        finished(part);
        at = part.end;
      }
    }
    return {
      chunks: chunks(),
      release: (reuse) => {
        for (const give of lent) give(reuse);
        lent = [];
      },
    };
  }

  close(): void {
    this.closed = true;
    this.o.pool.forget(this.wake);
    for (const k of [...this.parts.keys()]) this.drop(k);
    this.dropWaiters('the blob copy ended');
  }

  /** The part at `start`, started if it was not, as taken by the upload; parts before it are dropped. */
  private async take(start: number): Promise<Part> {
    if (!this.parts.has(start) && start !== this.next) this.restartAt(start);
    for (const k of [...this.parts.keys()]) if (k < start) this.drop(k);
    this.cursor = start;
    this.fill();
    const part =
      this.parts.get(start) ??
      (await new Promise<Part>((resolve, reject) => this.waiters.push({ start, resolve, reject })));
    part.taken = true;
    this.unready(part);
    // it may be waiting for a block: the part an upload is at gets one anyway
    this.o.pool.nudge();
    return part;
  }

  /** A part read whole: its slot goes to the parts ahead (its blocks come back as they are sent). */
  private finished(part: Part): void {
    if (this.parts.get(part.start) === part) this.forget(part.start);
    this.fill();
  }

  /** Reads still waiting for a part that will not come (a request body abandoned by a failed PATCH). */
  private dropWaiters(why: string): void {
    for (const w of this.waiters.splice(0)) w.reject(new AbortedError(`part at ${w.start} no longer read: ${why}`));
  }

  private readonly wake = (): void => this.fill();

  private restartAt(start: number): void {
    for (const k of [...this.parts.keys()]) this.drop(k);
    this.dropWaiters(`reading moved to ${start}`);
    this.next = start;
    this.cursor = start;
  }

  /** Forgets a part and stops its GET; its blocks are reused once the GET stops writing into them. */
  private drop(k: number): void {
    const part = this.parts.get(k)!;
    this.forget(k);
    this.unready(part);
    part.stop.abort(new AbortedError(`part at ${k} no longer read`));
    part.dispose();
  }

  private unready(part: Part): void {
    if (!part.ready) return;
    part.ready = false;
    this.o.pool.ready(-1);
  }

  private forget(k: number): void {
    if (this.parts.delete(k)) this.o.pool.release();
  }

  /** Starts part GETs while there is room: in flight < limit, a slot, and within the window. */
  private fill(): void {
    const windowEnd = Math.min(this.o.size, this.cursor + (this.o.concurrency + 1) * this.fetchSize);
    while (!this.closed && this.inFlight < this.limit && this.next < windowEnd) {
      const start = this.next;
      if (start >= this.chunkEnd && this.o.wanted && !this.o.wanted(start)) return;
      if (!this.o.pool.tryAcquire(this.wake, start === this.cursor)) return;
      this.startFetch(new Part(start, this.partEnd(start, this.fetchSize), this.o.pool));
    }
  }

  private startFetch(part: Part): void {
    this.next = part.end;
    this.inFlight++;
    this.parts.set(part.start, part);
    for (const w of this.waiters.filter((x) => x.start === part.start)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(part);
    }
    // a part is fetched ahead for the chunks to come, not for the upload attempt that asked for it: its GET is
    // retried by the part's own loop, not by the upload session's (lib/retry.ts, no nested retries)
    part.settled = this.fetch(part)
      .then(
        () => part.settle(),
        (err: unknown) => part.settle(err),
      )
      .finally(() => {
        this.inFlight--;
        this.adapt(part);
        this.fill();
      });
  }

  /** More parts at once while the upload waits for them, fewer while they wait for the upload; the next
   * parts sized by the rate this one came. */
  private adapt(part: Part): void {
    // (the part the upload streams may be read whole, and forgotten, before its GET has settled)
    if (!part.complete || part.stop.signal.aborted) return;
    const ms = Date.now() - part.startedAt - part.pausedMs;
    const wanted = Math.round(((part.length / Math.max(1, ms)) * PART_TARGET_MS) / BLOCK_SIZE) * BLOCK_SIZE;
    this.fetchSize = Math.min(this.partSize * (this.o.partGrowth ?? MAX_PART_GROWTH), Math.max(this.partSize, wanted));
    if (part.waited) this.limit = Math.min(this.o.concurrency, this.limit + 1);
    if (part.taken) return;
    part.ready = true;
    this.o.pool.ready(1);
    const waiting = [...this.parts.values()].filter((p) => p.ready).length;
    if (waiting >= 2) this.limit = Math.max(1, this.limit - 1);
  }

  private async fetch(part: Part): Promise<void> {
    const signal = this.o.signal ? AbortSignal.any([this.o.signal, part.stop.signal]) : part.stop.signal;
    part.signal = signal;
    await retry(
      async () => {
        // an attempt that failed midway is continued where its bytes stopped
        if (part.filled >= part.length) return;
        try {
          const { rangeHonoured } = await this.o.source.getBlobRange(
            this.o.repository,
            this.o.digest,
            part.start + part.filled,
            part.end - 1,
            (chunk) => part.write(chunk),
            // this loop retries, continuing from the first byte missing
            { signal, retry: oneAttempt(this.o.retry) },
          );
          if (!rangeHonoured && !this.warnedNoRange) {
            this.warnedNoRange = true;
            this.o.events?.onNotice?.(
              `${this.o.source.registry} ignores Range for ${this.o.digest}: each part streams the blob from its start`,
            );
          }
        } catch (err) {
          throw onSide(err, 'source');
        }
      },
      this.o.retry,
      { signal },
    );
  }
}
