/**
 * What job storage failures are worth another delivery, against a real Azurite: a storage that cannot be reached
 * (connection refused) is temporary; one that refuses the account key (403) is not — it fails the job at once
 * instead of being tried maxDequeueCount times.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobDocuments } from '../../lib/store/documents.js';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';

let azurite: RunningAzurite;
beforeAll(async () => {
  azurite = await startAzurite();
}, 60_000);
afterAll(async () => {
  await azurite?.stop();
});

const docs = (connectionString: string): BlobDocuments =>
  new BlobDocuments(
    BlobServiceClient.fromConnectionString(connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient(
      'errors',
    ),
  );

describe('job storage on Azurite: the contract memory documents stand in for (test/unit/store/job-store.test.ts)', () => {
  it('ifNoneExists writes only a new blob; ifMatch only over the ETag it names', async () => {
    const d = new BlobDocuments(
      BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('conditions'),
    );
    const first = await d.put('a.json', { n: 1 }, { ifNoneExists: true });
    expect(first).toBeTruthy();
    expect(await d.put('a.json', { n: 2 }, { ifNoneExists: true })).toBeUndefined();
    expect((await d.get('a.json'))?.value).toEqual({ n: 1 });
    const second = await d.put('a.json', { n: 3 }, { ifMatch: first! });
    expect(second).toBeTruthy();
    expect(second).not.toBe(first);
    expect(await d.put('a.json', { n: 4 }, { ifMatch: first! })).toBeUndefined();
    expect(await d.put('b.json', { n: 5 }, { ifMatch: first! })).toBeUndefined();
    expect(await d.get('a.json')).toEqual({ value: { n: 3 }, etag: second });
    expect(await d.get('b.json')).toBeUndefined();
  });

  it('lists names in order from a marker, a page at a time, with their metadata', async () => {
    const d = new BlobDocuments(
      BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient('pages'),
    );
    for (const n of ['p/c', 'p/a', 'q/x', 'p/b']) await d.put(n, {}, undefined, { n: n.replace('/', '-') });
    const first = await d.list('p/', { maxPageSize: 2 });
    expect(first.entries).toEqual([
      { name: 'p/a', metadata: { n: 'p-a' } },
      { name: 'p/b', metadata: { n: 'p-b' } },
    ]);
    expect(first.next).toBeTruthy();
    const second = await d.list('p/', { maxPageSize: 2, marker: first.next });
    expect(second.entries).toEqual([{ name: 'p/c', metadata: { n: 'p-c' } }]);
    expect(second.next).toBeUndefined();
  });
});

describe('job storage errors', () => {
  it('reads and writes when storage is there', async () => {
    const d = docs(azurite.connectionString);
    expect(await d.put('a.json', { x: 1 })).toBeTruthy();
    expect((await d.get<{ x: number }>('a.json'))?.value).toEqual({ x: 1 });
  });

  it('a refused key (403) is STORAGE_ERROR, not temporary', async () => {
    const wrongKey = azurite.connectionString.replace(
      /AccountKey=[^;]+/,
      `AccountKey=${Buffer.alloc(64, 1).toString('base64')}`,
    );
    const err = await docs(wrongKey)
      .put('b.json', { x: 1 })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'STORAGE_ERROR', side: 'storage', temporary: false });
    expect((err as Error).message).toContain('(403)');
  });

  it('storage that refuses connections is STORAGE_ERROR, temporary', async () => {
    const cs = azurite.connectionString;
    await azurite.stop();
    const err = await docs(cs)
      .get('a.json')
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'STORAGE_ERROR', side: 'storage', temporary: true });
  }, 30_000);
});
