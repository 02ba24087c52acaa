/**
 * The part reader: parts in order from ranged GETs, one retry budget per part (the transport sends each
 * GET once) and a broken-off part continued where it stopped, bodies that stall or trickle ended by their
 * deadlines, blocks owned and given back by it, few parts ahead of a slow upload.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { BLOCK_SIZE, MAX_PART_GROWTH, PartPool, PartReader } from '../../../lib/engine/part-reader.js';
import { FULL_GC_AFTER_BYTES } from '../../../lib/engine/young-gc.js';
import type { Digest } from '../../../lib/oci/digest.js';
import { RegistryClient } from '../../../lib/oci/registry.js';
import { startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';

const data = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
/** Large enough that its parts are pooled (small buffers are left to the garbage collector). */
const big = Buffer.from(Array.from({ length: 300 * 1024 }, (_, i) => i % 251));
const bigDigest = `sha256:${createHash('sha256').update(big).digest('hex')}` as Digest;
const digest = `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;

describe('PartReader (fake source)', () => {
  let src: FakeRegistry;
  afterEach(async () => {
    await src?.close();
  });
  const reader = (
    o: {
      budget?: PartPool;
      timeouts?: ConstructorParameters<typeof RegistryClient>[0]['timeouts'];
      attempts?: number;
    } = {},
  ) =>
    new PartReader({
      source: new RegistryClient({ registry: src.host, insecure: true, timeouts: o.timeouts }),
      repository: 'app',
      digest,
      size: data.length,
      concurrency: 2,
      partSize: 30,
      pool: o.budget ?? new PartPool(4),
      retry: { maxAttempts: o.attempts ?? 3, baseDelayMs: 1, maxDelayMs: 2 },
    });

  /** `big` read whole through `pool` (2 connections, 100 KiB parts), as an upload streams it; its blocks as they came. */
  const readBig = async (pool: PartPool): Promise<Buffer[]> => {
    const r = new PartReader({
      source: new RegistryClient({ registry: src.host, insecure: true }),
      repository: 'app',
      digest: bigDigest,
      size: big.length,
      concurrency: 2,
      partSize: 100 * 1024,
      pool,
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    });
    r.chunk(0, big.length, Infinity);
    const stream = r.stream(0, big.length);
    const got: Buffer[] = [];
    for await (const part of stream.chunks) got.push(Buffer.from(part));
    stream.release(true);
    r.close();
    return got;
  };

  it('streams a range in order as blocks, and gives them back to the pool when released', async () => {
    src = await startFakeRegistry();
    src.putBlob('app', big);
    const budget = new PartPool(4);
    const taken: Buffer[] = [];
    const originalBlock = budget.block.bind(budget);
    budget.block = (anyway: boolean) => {
      const b = originalBlock(anyway);
      if (b) taken.push(b);
      return b;
    };
    const got = await readBig(budget);
    expect(Buffer.concat(got).equals(big)).toBe(true);
    // parts end at part boundaries; a part of less than a block is one block
    expect(got.map((b) => b.length)).toEqual([102400, 102400, 102400]);
    // every block lent out came back: the next takes reuse them instead of allocating
    const again = originalBlock(true);
    expect(taken).toContain(again);
    expect(budget.heldBlocks).toBe(1);
  });

  it('runs a young collection every youngGcEveryBytes of blob bytes that arrive, across all readers of the pool', async () => {
    src = await startFakeRegistry();
    src.putBlob('app', big);
    const copyCounting = async (youngGcEveryBytes?: number) => {
      let collections = 0;
      const pool = new PartPool(4, 64 * BLOCK_SIZE, { youngGcEveryBytes, collect: () => collections++ });
      await Promise.all([readBig(pool), readBig(pool)]);
      return collections;
    };
    // two readers of 300 KiB each through one pool: 600 KiB arrived, in socket reads of up to ~100 KiB (a count
    // that reaches the interval starts again at 0: at most one collection per interval, at least one per interval
    // plus a read)
    const every64k = await copyCounting(64 * 1024);
    expect(every64k).toBeGreaterThanOrEqual(Math.floor((2 * big.length) / (164 * 1024)));
    expect(every64k).toBeLessThanOrEqual(Math.floor((2 * big.length) / (64 * 1024)));
    // the default, 4 MiB: none for 600 KiB
    expect(await copyCounting()).toBe(0);
    expect(new PartPool(4).youngGcEveryBytes).toBe(4 * 1024 * 1024);
  });

  it('runs a full collection when ArrayBuffer memory beyond its blocks has grown by fullGcAfterBytes since the lowest after the last one', () => {
    const MiB = 1024 * 1024;
    let external = 10 * MiB;
    let young = 0;
    let full = 0;
    const pool = new PartPool(4, 16 * BLOCK_SIZE, {
      youngGcEveryBytes: MiB,
      fullGcAfterBytes: 8 * MiB,
      collect: () => young++,
      collectAll: () => full++,
      arrayBufferBytes: () => external,
    });
    const arriveAt = (bytes: number) => {
      external = bytes;
      pool.arrivedBytes(MiB);
    };
    arriveAt(10 * MiB); // the baseline: 10 MiB beyond the blocks
    const blocks = [0, 1, 2, 3].map(() => pool.block(false)!);
    arriveAt(14 * MiB); // the pool's own blocks are not growth
    arriveAt(22 * MiB); // 8 MiB more: not beyond the threshold
    expect([young, full]).toEqual([3, 0]);
    arriveAt(23 * MiB);
    expect(full).toBe(1);
    arriveAt(16 * MiB); // after the full collection: the baseline again, 12 MiB
    arriveAt(24 * MiB);
    expect(full).toBe(1);
    arriveAt(24 * MiB + 1024);
    expect(full).toBe(2);
    arriveAt(14 * MiB); // the baseline again: 10 MiB
    // blocks given back unused are the pool's still; blocks dropped (a dead socket may hold them) are not
    for (const b of blocks.slice(0, 2)) pool.give(b, true);
    for (const b of blocks.slice(2)) pool.give(b, false);
    arriveAt(14 * MiB); // 12 MiB beyond 2 blocks: 2 more than the baseline
    arriveAt(20 * MiB + 1);
    expect([young, full]).toEqual([10, 3]);

    let none = 0;
    const off = new PartPool(4, 16 * BLOCK_SIZE, {
      youngGcEveryBytes: MiB,
      fullGcAfterBytes: null,
      collect: () => {},
      collectAll: () => none++,
      arrayBufferBytes: () => external,
    });
    for (const at of [10, 100, 1000]) {
      external = at * MiB;
      off.arrivedBytes(MiB);
    }
    expect(none).toBe(0);
    // where the process's memory cannot be read, the bytes flow on with young collections only
    let unreadable = 0;
    const blind = new PartPool(4, 16 * BLOCK_SIZE, {
      youngGcEveryBytes: MiB,
      collect: () => unreadable++,
      collectAll: () => none++,
      arrayBufferBytes: () => {
        throw new Error('ENOENT /proc/self/stat');
      },
    });
    for (let i = 0; i < 3; i++) blind.arrivedBytes(MiB);
    expect([unreadable, none]).toEqual([3, 0]);
    expect(new PartPool(4).fullGcAfterBytes).toBe(FULL_GC_AFTER_BYTES);
  });

  it('continues a part whose body broke off from its first missing byte', async () => {
    src = await startFakeRegistry();
    src.putBlob('app', data);
    src.faults.push({ method: 'GET', path: /\/blobs\//, times: 1, action: { kind: 'shortBody', bytes: 10 } });
    const r = reader();
    r.chunk(0, 30, 30);
    const part = await r.part(0);
    r.close();
    expect(part.data.equals(data.subarray(0, 30))).toBe(true);
    expect(
      src.requests
        .filter((q) => q.method === 'GET' && /-29$/.test(String(q.headers.range)))
        .map((q) => q.headers.range),
    ).toEqual(['bytes=0-29', 'bytes=10-29']);
  });

  it('fetches few parts ahead of an upload that is slower than the source', async () => {
    src = await startFakeRegistry();
    src.putBlob('app', big);
    const r = new PartReader({
      source: new RegistryClient({ registry: src.host, insecure: true }),
      repository: 'app',
      digest: bigDigest,
      size: big.length,
      concurrency: 8,
      partSize: 10 * 1024,
      pool: new PartPool(16),
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    });
    r.chunk(0, big.length, Infinity);
    const stream = r.stream(0, big.length);
    let read = 0;
    let maxAhead = 0;
    for await (const part of stream.chunks) {
      read += part.length;
      // the upload takes its time: every part the source had room to send has arrived
      await new Promise((resolve) => setTimeout(resolve, 60));
      const fetched = src.requests.filter((q) => q.method === 'GET').length * 10 * 1024;
      maxAhead = Math.max(maxAhead, fetched - read);
    }
    stream.release(true);
    r.close();
    expect(read).toBe(big.length);
    // without the limit: the window of concurrency + 1 = 9 parts; with it, the next part and two ready ones
    expect(maxAhead).toBeLessThanOrEqual(4 * 10 * 1024);
  });

  it('holds blob bytes within COPY_MEMORY, beyond only by the part the upload is at, and finishes', async () => {
    src = await startFakeRegistry();
    const blob = Buffer.alloc(8 * BLOCK_SIZE);
    for (let i = 0; i < blob.length; i += 4096) blob[i] = (i / 4096) % 251;
    const blobDigest = `sha256:${createHash('sha256').update(blob).digest('hex')}` as Digest;
    src.putBlob('app', blob);
    const budget = new PartPool(8, 2 * BLOCK_SIZE);
    const r = new PartReader({
      source: new RegistryClient({ registry: src.host, insecure: true }),
      repository: 'app',
      digest: blobDigest,
      size: blob.length,
      concurrency: 4,
      partSize: 2 * BLOCK_SIZE,
      pool: budget,
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    });
    r.chunk(0, blob.length, Infinity);
    const stream = r.stream(0, blob.length);
    const got: Buffer[] = [];
    let maxHeld = 0;
    for await (const block of stream.chunks) {
      got.push(Buffer.from(block));
      // a slow upload: the source could fill any amount of memory meanwhile
      await new Promise((resolve) => setTimeout(resolve, 20));
      maxHeld = Math.max(maxHeld, budget.heldBlocks);
    }
    stream.release(true);
    r.close();
    expect(Buffer.concat(got).equals(blob)).toBe(true);
    // 2 blocks of parts ahead, the 2 of the part the upload is at, the 1 it sent before
    expect(maxHeld).toBeLessThanOrEqual(5);
    expect(budget.heldBlocks).toBe(0);
  });

  it.each([
    ['a near source: parts grow (fewer requests), up to MAX_PART_GROWTH times the part size', 0, true],
    ['a slow source: parts stay at the part size', 400, false],
  ])('sizes parts by the rate they come: %s', async (_what, delayMs, grows) => {
    src = await startFakeRegistry();
    const blob = Buffer.alloc(6 * BLOCK_SIZE, 7);
    const blobDigest = `sha256:${createHash('sha256').update(blob).digest('hex')}` as Digest;
    src.putBlob('app', blob);
    if (delayMs) src.faults.push({ method: 'GET', path: /\/blobs\//, action: { kind: 'delay', ms: delayMs } });
    const partSize = 256 * 1024;
    const r = new PartReader({
      source: new RegistryClient({ registry: src.host, insecure: true }),
      repository: 'app',
      digest: blobDigest,
      size: blob.length,
      concurrency: 2,
      partSize,
      pool: new PartPool(8, 64 * BLOCK_SIZE),
      retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    });
    r.chunk(0, blob.length, Infinity);
    const stream = r.stream(0, blob.length);
    let n = 0;
    for await (const b of stream.chunks) n += b.length;
    stream.release(true);
    r.close();
    expect(n).toBe(blob.length);
    const lengths = src.requests
      .filter((q) => q.method === 'GET')
      .map((q) => {
        const [a, b] = String(q.headers.range).replace('bytes=', '').split('-').map(Number);
        return b! - a! + 1;
      });
    expect(Math.max(...lengths)).toBeLessThanOrEqual(MAX_PART_GROWTH * partSize);
    if (grows) expect(Math.max(...lengths)).toBeGreaterThan(partSize);
    else expect(lengths.every((x) => x === partSize)).toBe(true);
  });

  it("a part that fails every time costs exactly the part policy's attempts", async () => {
    src = await startFakeRegistry();
    src.putBlob('app', data);
    src.faults.push({ method: 'GET', path: /\/blobs\//, action: { kind: 'status', status: 503 } });
    const r = reader({ attempts: 4 });
    r.chunk(0, 30, 30);
    await expect(r.part(0)).rejects.toMatchObject({ status: 503, side: 'source' });
    r.close();
    expect(src.requests.filter((q) => q.method === 'GET' && q.headers.range === 'bytes=0-29')).toHaveLength(4);
  });

  it.each([
    ['stalls after 10 bytes', { kind: 'stallBody' as const, bytes: 10 }],
    ['trickles a byte every 40 ms', { kind: 'trickle' as const, intervalMs: 40 }],
  ])('a body that %s ends with TIMEOUT, retried, then failed', async (_what, action) => {
    src = await startFakeRegistry();
    src.putBlob('app', data);
    src.faults.push({ method: 'GET', path: /\/blobs\//, action });
    const r = reader({ attempts: 2, timeouts: { idleMs: 400, minBytesPerSecond: 100, rateWindowMs: 600 } });
    r.chunk(0, 30, 30);
    const t0 = Date.now();
    await expect(r.part(0)).rejects.toMatchObject({ code: 'TIMEOUT', temporary: true });
    r.close();
    expect(Date.now() - t0).toBeLessThan(5000);
    // the second attempt asks for what the first did not bring
    const ranges = src.requests
      .filter((q) => q.method === 'GET' && /-29$/.test(String(q.headers.range)))
      .map((q) => q.headers.range);
    expect(ranges).toHaveLength(2);
    expect(ranges[1]).toMatch(/^bytes=([1-9]\d*)-29$/);
  });
});
