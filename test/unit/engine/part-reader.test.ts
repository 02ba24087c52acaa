/**
 * The part reader: parts in order from ranged GETs, one retry budget per part (the transport sends each
 * GET once), bodies that stall or trickle ended by their deadlines, buffers owned and given back by it.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { PartBudget, PartReader } from '../../../lib/engine/part-reader.js';
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
  const reader = (o: { budget?: PartBudget; timeouts?: ConstructorParameters<typeof RegistryClient>[0]['timeouts']; attempts?: number } = {}) => new PartReader({
    source: new RegistryClient({ registry: src.host, insecure: true, timeouts: o.timeouts }),
    repository: 'app', digest, size: data.length, concurrency: 2, partSize: 30, budget: o.budget ?? new PartBudget(4),
    retry: { maxAttempts: o.attempts ?? 3, baseDelayMs: 1, maxDelayMs: 2 },
  });

  it('streams a range in order as parts, and gives their buffers back to the budget when released', async () => {
    src = await startFakeRegistry();
    src.putBlob('app', big);
    const budget = new PartBudget(4);
    const taken: ArrayBufferLike[] = [];
    const originalTake = budget.take.bind(budget);
    budget.take = (size: number) => {
      const b = originalTake(size);
      taken.push(b.buffer);
      return b;
    };
    const r = new PartReader({
      source: new RegistryClient({ registry: src.host, insecure: true }), repository: 'app', digest: bigDigest, size: big.length,
      concurrency: 2, partSize: 100 * 1024, budget, retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
    });
    r.chunk(0, big.length, Infinity);
    const stream = r.stream(0, big.length);
    const got: Buffer[] = [];
    for await (const part of stream.chunks) got.push(Buffer.from(part));
    stream.release();
    r.close();
    expect(Buffer.concat(got).equals(big)).toBe(true);
    expect(got.map((b) => b.length)).toEqual([102400, 102400, 102400]);
    // every buffer lent out came back: the next takes reuse them instead of allocating
    const again = budget.take(100 * 1024);
    expect(taken).toContain(again.buffer);
  });

  it('a part that fails every time costs exactly the part policy\'s attempts', async () => {
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
    expect(src.requests.filter((q) => q.method === 'GET' && q.headers.range === 'bytes=0-29')).toHaveLength(2);
  });
});
