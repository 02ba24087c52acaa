/**
 * The newest-first index of imports (lib/jobs/listing.ts) on memory storage that lists as blob storage does:
 * pages in order and stable while imports are added, status filters from the index metadata, a bounded scan,
 * entries without their record (or of another record) skipped, stale statuses repaired — and what a page costs
 * in storage operations.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryDocuments } from '../../../lib/jobs/documents.js';
import { indexName, MAX_SCAN } from '../../../lib/jobs/listing.js';
import { JobStore, type JobRecord, type JobStatus } from '../../../lib/jobs/store.js';

const T0 = Date.parse('2025-06-01T00:00:00Z');

function record(n: number, status: JobStatus = 'queued'): JobRecord {
  const at = new Date(T0 + n * 1000).toISOString();
  return {
    id: randomUUID(), status, createdAt: at, updatedAt: at, expiresAt: at,
    request: { source: `docker.io/library/app:${n}`, target: 'r.example', force: false, inlineCredentials: false },
    targets: [`r.example/app:${n}`], repositories: ['app'], blobsTotal: 0, bytesTotal: 0, manifests: 0, blobBytes: {}, doneBlobs: [],
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
    const first = await store.list({ limit: 3 });
    expect(sources(first.jobs)).toEqual(['6', '5', '4']);
    await store.create(record(100)); // newer than all: not in the later pages
    const second = await store.list({ limit: 3, token: first.next });
    expect(sources(second.jobs)).toEqual(['3', '2', '1']);
    const third = await store.list({ limit: 3, token: second.next });
    expect(sources(third.jobs)).toEqual(['0']);
    expect(third.next).toBeUndefined();
    expect(sources((await store.list({ limit: 2 })).jobs)).toEqual(['100', '6']);
  });

  it('filters by status from the index metadata, reading only the records it returns', async () => {
    const { docs, store } = await seeded(50, (n) => (n % 10 === 3 ? 'running' : 'succeeded'));
    const before = { ...docs.ops };
    const page = await store.list({ limit: 20, statuses: new Set(['running']) });
    expect(sources(page.jobs)).toEqual(['43', '33', '23', '13', '3']);
    expect(page.next).toBeUndefined();
    expect(docs.ops.list - before.list).toBe(1);
    expect(docs.ops.get - before.get).toBe(5);
  });

  it('a status change moves the import between filtered listings (the index entry is rewritten)', async () => {
    const { store, jobs } = await seeded(3);
    await store.update(jobs[1]!.id, (j) => ({ ...j, status: 'failed' }));
    expect(sources((await store.list({ limit: 10, statuses: new Set(['failed']) })).jobs)).toEqual(['1']);
    expect(sources((await store.list({ limit: 10, statuses: new Set(['queued']) })).jobs)).toEqual(['2', '0']);
  });

  it('scans at most MAX_SCAN entries per page: a rare status gives a short page with a next link, and the rest later', async () => {
    const { docs, store } = await seeded(MAX_SCAN + 5, (n) => (n === 0 || n === MAX_SCAN + 4 ? 'failed' : 'succeeded'));
    const before = { ...docs.ops };
    const first = await store.list({ limit: 10, statuses: new Set(['failed']) });
    expect(sources(first.jobs)).toEqual([String(MAX_SCAN + 4)]);
    expect(first.next).toBeDefined();
    expect(docs.ops.list - before.list).toBe(1);
    const second = await store.list({ limit: 10, statuses: new Set(['failed']), token: first.next });
    expect(sources(second.jobs)).toEqual(['0']);
    expect(second.next).toBeUndefined();
  });

  it('skips an entry whose record is missing or was created at another instant, and repairs a stale status', async () => {
    const { docs, store, jobs } = await seeded(3);
    // a lost race to create the same id: the loser's entry, another creation time
    await docs.put(indexName('2030-01-01T00:00:00Z', jobs[0]!.id), { id: jobs[0]!.id }, undefined, { status: 'queued' });
    // an entry whose record never got written
    await docs.put(indexName('2030-01-01T00:00:01Z', randomUUID()), {}, undefined, { status: 'queued' });
    expect(sources((await store.list({ limit: 10 })).jobs)).toEqual(['2', '1', '0']);

    // the record ended but its index entry was not rewritten (a failed write): skipped from the filter, then fixed
    const path = `${jobs[2]!.id}/job.json`;
    const doc = await docs.get<JobRecord>(path);
    await docs.put(path, { ...doc!.value, status: 'succeeded' });
    expect(sources((await store.list({ limit: 10, statuses: new Set(['queued']) })).jobs)).toEqual(['1', '0']);
    expect(sources((await store.list({ limit: 10, statuses: new Set(['succeeded']) })).jobs)).toEqual(['2']);
  });

  it('refuses a token it did not make', async () => {
    const { store } = await seeded(1);
    await expect(store.list({ limit: 5, token: 'bm9wZQ' })).rejects.toMatchObject({ code: 'INVALID_QUERY' });
  });
});
