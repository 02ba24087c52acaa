/**
 * The newest-first index of imports (lib/store/listing.ts) on memory storage that lists as blob storage does:
 * pages in order and stable while imports are added, status filters from the index metadata, a bounded scan,
 * entries without their record (or of another record) skipped, stale statuses repaired — and what a page costs
 * in storage operations.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryDocuments } from '../../../lib/store/documents.js';
import { indexName, MAX_LIST_CALLS, MAX_SCAN } from '../../../lib/store/listing.js';
import { macOf } from '../../../lib/store/mac.js';
import { JobStore, type JobRecord, type JobStatus } from '../../../lib/store/store.js';

const T0 = Date.parse('2025-06-01T00:00:00Z');
const KEYS = { current: Buffer.alloc(32, 4) };

function record(n: number, status: JobStatus = 'queued'): JobRecord {
  const at = new Date(T0 + n * 1000).toISOString();
  return {
    id: randomUUID(),
    status,
    createdAt: at,
    updatedAt: at,
    expiresAt: at,
    request: { source: `docker.io/library/app:${n}`, target: 'r.example', force: false, inlineCredentials: false },
    targets: [`r.example/app:${n}`],
    repositories: ['app'],
    blobsTotal: 0,
    bytesTotal: 0,
    manifests: 0,
    blobBytes: {},
    doneBlobs: [],
  };
}

async function seeded(count: number, status: (n: number) => JobStatus = () => 'queued') {
  const docs = new MemoryDocuments();
  const store = new JobStore(docs);
  const jobs: JobRecord[] = [];
  for (let n = 0; n < count; n++) {
    const job = record(n, status(n));
    await store.create(job);
    jobs.push(job);
  }
  return { docs, store, jobs };
}

const sources = (jobs: readonly JobRecord[]) => jobs.map((j) => j.request.source.split(':')[1]);

describe('the import index', () => {
  it('names sort newest first', () => {
    const a = indexName('2025-06-01T00:00:00.000Z', 'a');
    const b = indexName('2025-06-01T00:00:00.001Z', 'b');
    expect(b < a).toBe(true);
  });

  it('pages newest first; a page resumes after the previous one although newer imports were added in between', async () => {
    const { store } = await seeded(7);
    const first = await store.list({ limit: 3 }, KEYS);
    expect(sources(first.jobs)).toEqual(['6', '5', '4']);
    await store.create(record(100)); // newer than all: not in the later pages
    const second = await store.list({ limit: 3, token: first.next }, KEYS);
    expect(sources(second.jobs)).toEqual(['3', '2', '1']);
    const third = await store.list({ limit: 3, token: second.next }, KEYS);
    expect(sources(third.jobs)).toEqual(['0']);
    expect(third.next).toBeUndefined();
    expect(sources((await store.list({ limit: 2 }, KEYS)).jobs)).toEqual(['100', '6']);
  });

  it('filters by status from the index metadata, reading only the records it returns', async () => {
    const { docs, store } = await seeded(50, (n) => (n % 10 === 3 ? 'running' : 'succeeded'));
    const before = { ...docs.ops };
    const page = await store.list({ limit: 20, statuses: new Set(['running']) }, KEYS);
    expect(sources(page.jobs)).toEqual(['43', '33', '23', '13', '3']);
    expect(page.next).toBeUndefined();
    expect(docs.ops.list - before.list).toBe(1);
    expect(docs.ops.get - before.get).toBe(5);
  });

  it('a status change moves the import between filtered listings (the index entry is rewritten)', async () => {
    const { store, jobs } = await seeded(3);
    await store.update(jobs[1]!.id, (j) => ({ ...j, status: 'failed' }));
    expect(sources((await store.list({ limit: 10, statuses: new Set(['failed']) }, KEYS)).jobs)).toEqual(['1']);
    expect(sources((await store.list({ limit: 10, statuses: new Set(['queued']) }, KEYS)).jobs)).toEqual(['2', '0']);
  });

  it('scans at most MAX_SCAN entries per page: a rare status gives a short page with a next link, and the rest later', async () => {
    const { docs, store } = await seeded(MAX_SCAN + 5, (n) => (n === 0 || n === MAX_SCAN + 4 ? 'failed' : 'succeeded'));
    const before = { ...docs.ops };
    const first = await store.list({ limit: 10, statuses: new Set(['failed']) }, KEYS);
    expect(sources(first.jobs)).toEqual([String(MAX_SCAN + 4)]);
    expect(first.next).toBeDefined();
    expect(docs.ops.list - before.list).toBe(1);
    const second = await store.list({ limit: 10, statuses: new Set(['failed']), token: first.next }, KEYS);
    expect(sources(second.jobs)).toEqual(['0']);
    expect(second.next).toBeUndefined();
  });

  it('skips an entry whose record is missing or was created at another instant, and repairs a stale status', async () => {
    const { docs, store, jobs } = await seeded(3);
    // a lost race to create the same id: the loser's entry, another creation time
    await docs.put(indexName('2030-01-01T00:00:00Z', jobs[0]!.id), { id: jobs[0]!.id }, undefined, {
      status: 'queued',
    });
    // an entry whose record never got written
    await docs.put(indexName('2030-01-01T00:00:01Z', randomUUID()), {}, undefined, { status: 'queued' });
    expect(sources((await store.list({ limit: 10 }, KEYS)).jobs)).toEqual(['2', '1', '0']);

    // the record ended but its index entry was not rewritten (a failed write): skipped from the filter, then fixed
    const path = `${jobs[2]!.id}/job.json`;
    const doc = await docs.get<JobRecord>(path);
    await docs.put(path, { ...doc!.value, status: 'succeeded' });
    expect(sources((await store.list({ limit: 10, statuses: new Set(['queued']) }, KEYS)).jobs)).toEqual(['1', '0']);
    expect(sources((await store.list({ limit: 10, statuses: new Set(['succeeded']) }, KEYS)).jobs)).toEqual(['2']);
  });

  it('refuses a token it did not make', async () => {
    const { store } = await seeded(1);
    await expect(store.list({ limit: 5, token: 'bm9wZQ' }, KEYS)).rejects.toMatchObject({ code: 'INVALID_QUERY' });
  });

  it('a correctly tagged token of the wrong shape is refused too: it names an index entry, and a marker only as text', async () => {
    const { docs, store } = await seeded(3);
    const signed = (body: string) => `${body}.${macOf(KEYS, 'list-token', body)}`;
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const before = docs.ops.list;
    for (const token of [
      signed(b64({ a: 42 })),
      signed(b64({ a: 'job/elsewhere' })),
      signed(b64({ a: 'index/0', m: 7 })),
      signed(b64({ m: 'x' })),
      signed(Buffer.from('not json').toString('base64url')),
      `${signed(b64({ a: 'index/0' }))}.extra`,
    ])
      await expect(store.list({ limit: 1, token }, KEYS)).rejects.toMatchObject({ code: 'INVALID_QUERY' });
    expect(docs.ops.list).toBe(before);
    // the same shape the service writes is taken
    await expect(
      store.list({ limit: 1, token: signed(b64({ a: 'index/0', m: 'index/0' })) }, KEYS),
    ).resolves.toBeDefined();
    await expect(store.list({ limit: 1, token: signed(b64({ a: 'index/0' })) }, KEYS)).resolves.toBeDefined();
  });

  it('a continuation token the service did not make is refused before any List Blobs call; whatever a token says, a page costs at most MAX_LIST_CALLS', async () => {
    const { docs, store } = await seeded(200);
    const calls = () => docs.ops.list;
    // the review's forged token: a name past every entry, no marker — without a bound, limit=1 listed the whole index
    const forged = Buffer.from(JSON.stringify({ a: 'index/9999999999999-z' })).toString('base64url');
    let before = calls();
    await expect(store.list({ limit: 1, token: forged }, KEYS)).rejects.toMatchObject({ code: 'INVALID_QUERY' });
    await expect(
      store.list(
        { limit: 1, token: `${forged}.${macOf({ current: Buffer.alloc(32, 5) }, 'list-token', forged)}` },
        KEYS,
      ),
    ).rejects.toMatchObject({ code: 'INVALID_QUERY' });
    expect(calls() - before).toBe(0);
    // with the key leaked the tag is valid, and the scan still stops
    before = calls();
    const leaked = await store.list({ limit: 1, token: `${forged}.${macOf(KEYS, 'list-token', forged)}` }, KEYS);
    expect(calls() - before).toBe(MAX_LIST_CALLS);
    expect(leaked).toMatchObject({ jobs: [], next: expect.any(String) });
    // the service's own tokens page through as before, each page one or two calls
    let token: string | undefined;
    for (let page = 0; page < 5; page++) {
      before = calls();
      const p = await store.list({ limit: 1, ...(token ? { token } : {}) }, KEYS);
      expect(calls() - before).toBeLessThanOrEqual(2);
      expect(sources(p.jobs)).toEqual([String(199 - page)]);
      token = p.next;
    }
  });
});
