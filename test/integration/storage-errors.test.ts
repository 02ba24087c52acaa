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
