/**
 * The job store on memory documents (lib/store/store.ts, lib/store/documents.ts): optimistic concurrency by ETag
 * is what lets parallel blob steps update one record without locks, so each rule gets a case of its own — a write
 * under a stale ETag or onto an existing record does nothing, an update that loses a race reads again and applies
 * its change on top, and a record that ends loses its sealed credentials. The same contract against Azurite:
 * test/integration/storage-errors.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDocuments } from '../../../lib/store/documents.js';
import { INDEX_PREFIX } from '../../../lib/store/listing.js';
import { JobStore, progressOf, type JobRecord } from '../../../lib/store/store.js';
import { jobRecord } from '../../support/job-record.js';

const job = (id: string, fields: Partial<JobRecord> = {}): JobRecord => jobRecord({ id, ...fields });

const SEALED = { v: 1 as const, iv: 'iv', tag: 'tag', data: 'data' };

describe('memory documents: conditional writes', () => {
  it('ifNoneExists writes only a new document; ifMatch only over the ETag it names', async () => {
    const docs = new MemoryDocuments();
    const first = await docs.put('a.json', { n: 1 }, { ifNoneExists: true });
    expect(first).toMatch(/^".+"$/);
    expect(await docs.put('a.json', { n: 2 }, { ifNoneExists: true })).toBeUndefined();
    expect((await docs.get('a.json'))?.value).toEqual({ n: 1 });

    const second = await docs.put('a.json', { n: 3 }, { ifMatch: first! });
    expect(second).toBeDefined();
    expect(second).not.toBe(first);
    expect(await docs.put('a.json', { n: 4 }, { ifMatch: first! })).toBeUndefined(); // stale
    expect(await docs.put('b.json', { n: 5 }, { ifMatch: first! })).toBeUndefined(); // no such document
    expect(await docs.get('a.json')).toEqual({ value: { n: 3 }, etag: second });
    expect(await docs.get('b.json')).toBeUndefined();
    expect(docs.ops.put).toBe(5);
  });

  it('lists names in order from a marker, a page at a time', async () => {
    const docs = new MemoryDocuments();
    for (const n of ['p/c', 'p/a', 'q/x', 'p/b']) await docs.put(n, {}, undefined, { n });
    expect(await docs.list('p/', { maxPageSize: 2 })).toEqual({
      entries: [
        { name: 'p/a', metadata: { n: 'p/a' } },
        { name: 'p/b', metadata: { n: 'p/b' } },
      ],
      next: 'p/c',
    });
    expect(await docs.list('p/', { maxPageSize: 2, marker: 'p/c' })).toEqual({
      entries: [{ name: 'p/c', metadata: { n: 'p/c' } }],
    });
  });
});

describe('job store', () => {
  it('creates a record once, with its index entry and its sealed credentials', async () => {
    const docs = new MemoryDocuments();
    const store = new JobStore(docs);
    await store.create(job('j1'), SEALED);
    expect(await store.get('j1')).toMatchObject({ id: 'j1', status: 'queued' });
    expect(await store.secret('j1')).toEqual(SEALED);
    expect([...docs.dump().keys()].filter((k) => k.startsWith(INDEX_PREFIX))).toHaveLength(1);
    await expect(store.create(job('j1', { status: 'running' }))).rejects.toMatchObject({
      code: 'JOB_EXISTS',
      side: 'storage',
    });
    expect(await store.get('j1')).toMatchObject({ status: 'queued' });
    await store.create(job('j2'));
    expect(await store.secret('j2')).toBeUndefined();
  });

  it('an update of a missing record fails JOB_NOT_FOUND; "no change" writes nothing', async () => {
    const docs = new MemoryDocuments();
    const store = new JobStore(docs);
    await expect(store.update('nope', (j) => j)).rejects.toMatchObject({ code: 'JOB_NOT_FOUND' });
    await store.create(job('j1'));
    const puts = docs.ops.put;
    expect(await store.update('j1', () => undefined)).toMatchObject({
      status: 'queued',
      updatedAt: '2026-12-05T00:00:00.000Z',
    });
    expect(docs.ops.put).toBe(puts);
  });

  it('an update that loses a race to another writer reads again and applies its change on top of theirs', async () => {
    const docs = new MemoryDocuments();
    const store = new JobStore(docs);
    await store.create(job('j1', { doneBlobs: [] }));
    let calls = 0;
    const after = await store.update('j1', (j) => {
      calls++;
      if (calls === 1) {
        // another step finishes blob 0 between this read and this write
        void docs.put('j1/job.json', { ...j, doneBlobs: [0] });
      }
      return { ...j, doneBlobs: [...j.doneBlobs, 1] };
    });
    expect(calls).toBe(2);
    expect(after.doneBlobs).toEqual([0, 1]);
    expect((await store.get('j1'))?.doneBlobs).toEqual([0, 1]);
    expect(after.updatedAt).not.toBe('2026-12-05T00:00:00.000Z');
  });

  it('a record that ends loses its sealed credentials and its index entry says so; one still running keeps them', async () => {
    const docs = new MemoryDocuments();
    const store = new JobStore(docs);
    const request = { inlineCredentials: true } as JobRecord['request'];
    await store.create(job('j1', { request }), SEALED);
    await store.update('j1', (j) => ({ ...j, status: 'running' }));
    expect(await store.secret('j1')).toEqual(SEALED);
    await store.update('j1', (j) => ({ ...j, status: 'failed', error: { code: 'X', message: 'm' } }));
    expect(await store.secret('j1')).toBeUndefined();
    const index = await docs.list(INDEX_PREFIX, { maxPageSize: 10 });
    expect(index.entries.map((e) => e.metadata.status)).toEqual(['failed']);
  });

  it('counts progress from the record: blobs done, bytes present', () => {
    expect(
      progressOf(
        job('j1', {
          manifests: 2,
          blobsTotal: 3,
          bytesTotal: 30,
          doneBlobs: [0, 2],
          blobBytes: { 0: 10, 1: 4, 2: 10 },
        }),
      ),
    ).toEqual({ manifests: 2, blobsTotal: 3, blobsDone: 2, bytesTotal: 30, bytesCopied: 24 });
  });
});
