/**
 * Retention (JOB_RETENTION_DAYS) against Azurite, the blob storage the app runs on locally: an import that ended
 * more than the retention ago loses its folder (record, sealed credentials, plan, checkpoints) and its index entry
 * and leaves a tombstone (GET → 404 IMPORT_EXPIRED); an old import still running, and one that ended recently,
 * are kept. The GET goes through the getImport handler with a service on the same storage.
 */
import { HttpRequest, InvocationContext } from '@azure/functions';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getImport } from '../../functions/imports.js';
import { loadConfig } from '../../lib/config.js';
import { BlobDocuments, listNames } from '../../lib/store/documents.js';
import { indexName } from '../../lib/store/listing.js';
import { MemoryJobQueue } from '../../lib/store/queue.js';
import { prefixesAtOrAbove } from '../../lib/store/retention.js';
import { setImportService } from '../../lib/service/runtime.js';
import { ImportService } from '../../lib/service/service.js';
import { JobStore, type JobRecord, type JobStatus } from '../../lib/store/store.js';
import { startAzurite, type RunningAzurite } from '../support/azurite.js';
import { TEST_MESSAGE_KEY } from '../support/service.js';

const DAY = 86_400_000;

function record(id: string, status: JobStatus, createdDaysAgo: number, updatedDaysAgo: number, now: number): JobRecord {
  return {
    id,
    status,
    createdAt: new Date(now - createdDaysAgo * DAY).toISOString(),
    updatedAt: new Date(now - updatedDaysAgo * DAY).toISOString(),
    expiresAt: new Date(now - createdDaysAgo * DAY + DAY).toISOString(),
    request: {
      source: 'docker.io/library/nginx:1.27',
      target: 'r.example',
      inlineCredentials: true,
    } as unknown as JobRecord['request'],
    targets: ['r.example/nginx:1.27'],
    repositories: ['nginx'],
    blobsTotal: 1,
    bytesTotal: 10,
    manifests: 1,
    blobBytes: {},
    doneBlobs: [],
  };
}

describe('retention against Azurite', () => {
  let azurite: RunningAzurite;
  let docs: BlobDocuments;
  let store: JobStore;
  let service: ImportService;
  const now = Date.now();
  const ids = {
    oldEnded: '11111111-1111-4111-8111-111111111111',
    oldRunning: '22222222-2222-4222-8222-222222222222',
    recentEnded: '33333333-3333-4333-8333-333333333333',
    oldCreatedRecentlyEnded: '44444444-4444-4444-8444-444444444444',
    veryOldFailed: '55555555-5555-4555-8555-555555555555',
  };

  beforeAll(async () => {
    azurite = await startAzurite();
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      'retentionjobs',
    );
    docs = new BlobDocuments(container);
    store = new JobStore(docs);
    service = new ImportService({
      config: loadConfig({ MESSAGE_KEY: TEST_MESSAGE_KEY, TARGET_REGISTRY: 'r.example', JOB_RETENTION_DAYS: '30' }),
      store,
      queue: new MemoryJobQueue(),
    });
    const secret = { v: 1 as const, iv: 'aXY=', tag: 'dGFn', data: 'ZGF0YQ==' };
    await store.create(record(ids.oldEnded, 'succeeded', 40, 39, now), secret);
    await docs.put(`${ids.oldEnded}/plan.json`, { manifests: [] });
    await docs.put(`${ids.oldEnded}/blob-0.json`, { state: {} });
    await store.create(record(ids.oldRunning, 'running', 40, 40, now));
    await store.create(record(ids.recentEnded, 'failed', 3, 2, now));
    await store.create(record(ids.oldCreatedRecentlyEnded, 'canceled', 35, 5, now));
    await store.create(record(ids.veryOldFailed, 'failed', 400, 400, now));
  }, 60_000);

  afterAll(async () => {
    setImportService(undefined);
    await azurite?.stop();
  });

  const names = (prefix: string): Promise<string[]> => listNames(docs, prefix);

  it('prefixes cover exactly the names at or above the threshold', () => {
    const t = '8234567890123';
    const p = prefixesAtOrAbove(t);
    const covered = (name: string) => p.some((x) => name.startsWith(x));
    for (const name of [
      '8234567890123',
      '8234567890124',
      '8234567890199',
      '8235000000000',
      '9000000000000',
      '8234567891000',
    ])
      expect(covered(name), name).toBe(true);
    for (const name of ['8234567890122', '8234567890023', '8134567890123', '0000000000000'])
      expect(covered(name), name).toBe(false);
    // no name is listed twice
    for (let i = 0; i < p.length; i++)
      for (let j = 0; j < p.length; j++) if (i !== j) expect(p[j]!.startsWith(p[i]!)).toBe(false);
  });

  it('deletes the ended imports older than the retention with their index entries, keeps a running one and recent ones', async () => {
    const before = await names('index/');
    expect(before).toHaveLength(5);
    const result = await service.prune(new Date(now));
    expect(result.deleted.sort()).toEqual([ids.oldEnded, ids.veryOldFailed].sort());
    expect(result.kept).toBe(2); // the running one, and the one ended 5 days ago (created 35 days ago)

    expect(await names(`${ids.oldEnded}/`)).toEqual([]);
    expect(await names(`${ids.veryOldFailed}/`)).toEqual([]);
    const index = await names('index/');
    expect(index.sort()).toEqual(
      [ids.oldRunning, ids.recentEnded, ids.oldCreatedRecentlyEnded]
        .map((id) =>
          indexName(
            record(id, 'running', id === ids.recentEnded ? 3 : id === ids.oldRunning ? 40 : 35, 0, now).createdAt,
            id,
          ),
        )
        .sort(),
    );
    for (const id of [ids.oldRunning, ids.recentEnded, ids.oldCreatedRecentlyEnded])
      expect((await store.get(id))?.id).toBe(id);
    // the listing no longer shows them
    const page = await service.list({ limit: 100 });
    expect(page.value.map((v) => v.id).sort()).toEqual(
      [ids.oldRunning, ids.recentEnded, ids.oldCreatedRecentlyEnded].sort(),
    );

    // a second run finds nothing more to delete
    expect((await service.prune(new Date(now))).deleted).toEqual([]);
  });

  it('GET of a deleted import: 404 IMPORT_EXPIRED naming when it ended; an id never seen: 404 NOT_FOUND', async () => {
    setImportService(service);
    const ctx = new InvocationContext({ functionName: 'getImport', invocationId: 't', logHandler: () => undefined });
    const get = (id: string) =>
      getImport(
        new HttpRequest({ method: 'GET', url: `http://127.0.0.1:7071/api/imports/${id}`, params: { id } }),
        ctx,
      );
    const expired = await get(ids.oldEnded);
    expect(expired.status).toBe(404);
    expect((expired.jsonBody as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'IMPORT_EXPIRED',
      message: expect.stringContaining(record(ids.oldEnded, 'succeeded', 40, 39, now).updatedAt),
    });
    const unknown = await get('66666666-6666-4666-8666-666666666666');
    expect((unknown.jsonBody as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    const running = await get(ids.oldRunning);
    expect(running.status).toBe(200);
  });

  it('bounded per run: maxJobs deletions at most', async () => {
    const more = [
      '77777777-7777-4777-8777-777777777771',
      '77777777-7777-4777-8777-777777777772',
      '77777777-7777-4777-8777-777777777773',
    ];
    for (const id of more) await store.create(record(id, 'succeeded', 60, 60, now));
    const { pruneEnded } = await import('../../lib/store/retention.js');
    const first = await pruneEnded(docs, { retentionDays: 30, now: new Date(now), maxJobs: 2 });
    expect(first.deleted).toHaveLength(2);
    const second = await pruneEnded(docs, { retentionDays: 30, now: new Date(now), maxJobs: 2 });
    expect(second.deleted).toHaveLength(1);
  });
});
