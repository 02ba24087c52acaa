/**
 * The queue steps on memory storage against fake registries: fan-out/fan-in, duplicate delivery,
 * a worker dying mid-blob, leases, poison after the last attempt, requests dropped on the queue.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryDocuments } from '../../../lib/store/documents.js';
import { OciImportError } from '../../../lib/errors.js';
import type { StepMessage } from '../../../lib/store/queue.js';
import { CHECKPOINT_EVERY_MS } from '../../../lib/service/steps.js';
import { startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { blobStep, testService, type TestService } from '../../support/service.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const KiB = 1024;

function bytes(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0, n = 0; i < size; i += 32, n++) createHash('sha256').update(`${seed}:${n}`).digest().copy(out, i);
  return out;
}

/** A 2-platform index with a shared layer and one layer per platform. */
function seedIndex(reg: FakeRegistry, repo: string, tag: string, layerSize: number) {
  const shared = bytes(layerSize, 'shared');
  const children = ['amd64', 'arm64'].map((arch) => {
    const own = bytes(layerSize, arch);
    const config = Buffer.from(
      JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
    );
    const layers = [shared, own].map((l) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      digest: reg.putBlob(repo, l),
      size: l.length,
    }));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: reg.putBlob(repo, config),
          size: config.length,
        },
        layers,
      }),
    );
    return {
      mediaType: OCI_MANIFEST,
      digest: reg.putManifest(
        repo,
        createHash('sha256').update(manifest).digest('hex') &&
          `sha256:${createHash('sha256').update(manifest).digest('hex')}`,
        manifest,
        OCI_MANIFEST,
      ),
      size: manifest.length,
      platform: { os: 'linux', architecture: arch },
    };
  });
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children }));
  return reg.putManifest(repo, tag, index, OCI_INDEX);
}

describe('import steps (memory storage, fake registries)', () => {
  let src: FakeRegistry;
  let dst: FakeRegistry;
  afterEach(async () => {
    await Promise.all([src?.close(), dst?.close()]);
  });

  const setup = async (extra: Record<string, string> = {}, opts: { leaseMarginMs?: number } = {}) => {
    [src, dst] = await Promise.all([startFakeRegistry(), startFakeRegistry()]);
    return testService(
      {
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${src.host},${dst.host}`,
        ALLOWED_SOURCES: src.host,
        CHUNK_SIZE: '64KiB',
        STEP_BUDGET_SECONDS: '1',
        ...extra,
      },
      opts,
    );
  };

  /** Runs queued messages until none is left, shuffled, each one delivered twice when `duplicate`. */
  const drain = async (t: TestService, o: { duplicate?: boolean } = {}) => {
    for (let rounds = 0; rounds < 500; rounds++) {
      const batch = t.queue.drain();
      if (batch.length === 0) return;
      const deliveries = o.duplicate ? [...batch, ...batch] : batch;
      deliveries.sort(() => Math.random() - 0.5);
      await Promise.all(deliveries.map((m) => t.service.handleMessage(m, t.meta())));
    }
    throw new Error('queue did not drain');
  };

  it('runs plan → parallel blob steps → finalize to success, byte-identical', async () => {
    const t = await setup();
    const digest = seedIndex(src, 'team/app', '1', 150 * KiB);
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1', 'app:stable'] }, 'http');
    await drain(t);
    const status = await t.service.status(job.id);
    expect(status).toMatchObject({ status: 'succeeded', digest, progress: { blobsTotal: 5, blobsDone: 5 } });
    expect(status!.progress.bytesCopied).toBe(status!.progress.bytesTotal);
    expect(dst.getManifest('app', '1')?.digest).toBe(digest);
    expect(dst.getManifest('app', 'stable')?.digest).toBe(digest);
  });

  it('is unharmed by every message being delivered twice', async () => {
    const t = await setup();
    const digest = seedIndex(src, 'team/app', '1', 150 * KiB);
    const job = await t.service.submit(
      { source: `${src.host}/team/app:1`, images: ['dup/app:1'], repository: 'other/app' },
      'http',
    );
    await drain(t, { duplicate: true });
    expect(await t.service.status(job.id)).toMatchObject({ status: 'succeeded', digest });
    expect(dst.getManifest('dup/app', '1')?.digest).toBe(digest);
    expect(dst.getManifest('other/app', digest)?.digest).toBe(digest);
  });

  it.each([
    // (the next chunk goes out while a checkpoint is written: whether or not that write landed, the
    // registry holds more than the checkpoint says, and refuses its stale Location)
    ['after a PATCH, before its checkpoint: a new session', false, 1, 6],
    ['right after a checkpoint, the next chunk on its way: a new session', true, 1, 6],
  ])('resumes a blob after a worker dies mid-step %s', async (_name, diesAfterSave, newSessions, patchesAfter) => {
    const docs = (await setup()).docs as MemoryDocuments;
    const first = testService(
      {
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${src.host},${dst.host}`,
        ALLOWED_SOURCES: src.host,
        CHUNK_SIZE: '64KiB',
        STEP_BUDGET_SECONDS: '1',
      },
      { docs, leaseMarginMs: 0 },
    );
    const digest = seedIndex(src, 'team/app', '1', 400 * KiB);
    const job = await first.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    await first.service.handleMessage(first.queue.drain()[0], first.meta());
    const blobMessages = first.queue.drain();
    const big = blobStep(blobMessages[1]);
    // The "crash": after two chunks this worker can write nothing more (it is dead), the lease stays held.
    let writes = 0;
    const put = docs.put.bind(docs);
    docs.put = async (path, value, condition) => {
      if (path.endsWith(`blob-${big.blob}.json`) && ++writes >= 4) {
        if (diesAfterSave && writes === 4) await put(path, value, condition);
        // (what the blob store throws for a failed write: a temporary STORAGE_ERROR; a plain Error is a bug, failing the job)
        throw new OciImportError('STORAGE_ERROR', 'worker killed', { temporary: true, side: 'storage' });
      }
      return put(path, value, condition);
    };
    await expect(first.service.handleMessage(big, first.meta())).rejects.toThrow('worker killed');
    docs.put = put;
    const checkpoint = JSON.parse(docs.dump().get(`${job.id}/blob-${big.blob}.json`)!) as {
      state: { offset: number; location?: string };
      lease?: unknown;
    };
    expect(checkpoint.state.offset).toBeGreaterThan(0);
    expect(checkpoint.lease).toBeDefined();

    // Redelivery to another instance: the lease of the dead step is still live → it looks again later.
    const second = testService(first.env, { docs, queue: first.queue, leaseMarginMs: 0 });
    await second.service.handleMessage(big, second.meta(2));
    const retried = first.queue.drain();
    expect(retried).toEqual([big]);
    await new Promise((r) => setTimeout(r, 1100));
    // The big blob alone first: count what its resumption costs.
    const patchesBefore = dst.requests.filter((r) => r.method === 'PATCH').length;
    const postsBefore = dst.requests.filter((r) => r.method === 'POST').length;
    first.queue.send(big);
    while (first.queue.sent.length) {
      for (const m of first.queue.drain()) await second.service.handleMessage(m, second.meta(2));
    }
    const bigDigest = (await first.store.plan(job.id))!.blobs[big.blob]!.digest;
    expect(Buffer.from(dst.getBlob(bigDigest)!).equals(Buffer.from(src.getBlob(bigDigest)!))).toBe(true);
    // 400 KiB in 64 KiB chunks is 7 chunks. The registry holds more than the checkpoint says,
    // distribution refuses the stale Location (and drops the session) → one new session, the blob sent
    // again (6 PATCHes + final PUT). (A step that ends on its budget continues the same session:
    // engine.test.ts, 'stops after every chunk, serialises its state, and finishes from fresh engines'.)
    expect(dst.requests.filter((r) => r.method === 'POST').length - postsBefore).toBe(newSessions);
    expect(dst.requests.filter((r) => r.method === 'PATCH').length - patchesBefore).toBe(patchesAfter);

    for (const m of blobMessages.filter((m) => m !== big)) first.queue.send(m);
    while (first.queue.sent.length) {
      for (const m of first.queue.drain()) await second.service.handleMessage(m, second.meta(2));
    }
    expect(await second.service.status(job.id)).toMatchObject({ status: 'succeeded', digest });
  });

  it("hands a step's continuation to the output binding (MessageMeta.handOff) and sends a fan-out's blob steps to the queue", async () => {
    const t = await setup();
    const digest = seedIndex(src, 'team/app', '1', 400 * KiB);
    // 7 chunks of 64 KiB at 250 ms each: a blob step outlasts its 1 s budget and must continue
    dst.faults.push({ method: 'PATCH', path: /\/blobs\/uploads\//, action: { kind: 'delay', ms: 250 } });
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    const handed: StepMessage[] = [];
    const meta = () => ({ ...t.meta(), handOff: (m: StepMessage) => handed.push(m) });

    await t.service.handleMessage(t.queue.drain()[0], meta());
    // the blob steps go out before the fan-out records its batch: straight to the queue, never handed off
    const blobMessages = t.queue.drain();
    expect(blobMessages.map((m) => m.step)).toEqual(['blob', 'blob', 'blob', 'blob', 'blob']);
    expect(handed).toEqual([]);

    const big = blobStep(blobMessages[1]);
    await t.service.handleMessage(big, meta());
    expect(t.queue.sent).toEqual([]);
    expect(handed).toHaveLength(1);
    expect(handed[0]).toMatchObject({ v: 1, job: job.id, step: 'blob', blob: big.blob, digest: big.digest });
    expect(handed[0]!.mac).toEqual(expect.any(String));

    // what was handed off runs as any queued message (signed alike): the import ends
    dst.faults.length = 0;
    const pending: StepMessage[] = [...handed.splice(0), ...blobMessages.filter((m) => m !== big)];
    for (let rounds = 0; pending.length > 0 && rounds < 100; rounds++) {
      for (const m of pending.splice(0)) await t.service.handleMessage(m, meta());
      pending.push(...handed.splice(0), ...t.queue.drain());
    }
    expect(await t.service.status(job.id)).toMatchObject({ status: 'succeeded', digest });
    expect(t.queue.poisoned).toEqual([]);
  });

  it("writes a blob step's checkpoint at most every CHECKPOINT_EVERY_MS while it copies, and when it ends", async () => {
    const docs = new MemoryDocuments();
    [src, dst] = await Promise.all([startFakeRegistry(), startFakeRegistry()]);
    const t = testService(
      {
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${src.host},${dst.host}`,
        ALLOWED_SOURCES: src.host,
        CHUNK_SIZE: '64KiB',
        STEP_BUDGET_SECONDS: '60',
      },
      { docs, checkpointEveryMs: CHECKPOINT_EVERY_MS },
    );
    const digest = seedIndex(src, 'team/app', '1', 400 * KiB);
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    await t.service.handleMessage(t.queue.drain()[0], t.meta());
    const blobMessages = t.queue.drain();
    const big = blobStep(blobMessages[1]);
    let writes = 0;
    const put = docs.put.bind(docs);
    docs.put = async (path, value, condition) => {
      if (path.endsWith(`blob-${big.blob}.json`)) writes++;
      return put(path, value, condition);
    };
    const started = Date.now();
    await t.service.handleMessage(big, t.meta());
    docs.put = put;
    // 7 chunks of 64 KiB in well under a second: the claim, the checkpoint of the new session, the end —
    // not one per chunk
    expect(Date.now() - started).toBeLessThan(CHECKPOINT_EVERY_MS);
    expect(dst.requests.filter((r) => r.method === 'PATCH').length).toBeGreaterThanOrEqual(6);
    expect(writes).toBeLessThanOrEqual(3);
    for (const m of [...blobMessages.filter((m) => m !== big), ...t.queue.drain()]) t.queue.send(m);
    while (t.queue.sent.length) {
      for (const m of t.queue.drain()) await t.service.handleMessage(m, t.meta());
    }
    expect(await t.service.status(job.id)).toMatchObject({ status: 'succeeded', digest });
  });

  it('marks the job failed with the reason on the last attempt of a failing step, and rethrows for the poison queue', async () => {
    const t = await setup();
    seedIndex(src, 'team/app', '1', 10 * KiB);
    const job = await t.service.submit({ source: `${src.host}/team/app:1` }, 'http');
    src.faults.push({ method: 'GET', path: /manifests/, action: { kind: 'status', status: 503 } });
    const plan: StepMessage = t.queue.drain()[0]!;
    await expect(t.service.handleMessage(plan, t.meta(1))).rejects.toThrow(/503/);
    expect((await t.service.status(job.id))!.status).toBe('queued');
    await expect(t.service.handleMessage(plan, t.meta(3))).rejects.toThrow(/503/);
    const status = await t.service.status(job.id);
    expect(status!.status).toBe('failed');
    expect(status!.error!.message).toMatch(/gave up after 3 attempts of the plan step: GET .* answered 503/);
  });

  it('fails the job at once, without retries, for a permanent error', async () => {
    const t = await setup();
    const job = await t.service.submit({ source: `${src.host}/team/missing:1` }, 'http');
    await drain(t);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'failed', error: { code: 'SOURCE_NOT_FOUND' } });
  });

  it('accepts a request dropped on the queue, with a named credential', async () => {
    const t = await setup({
      REGISTRY_CREDENTIALS__mirror__USERNAME: 'u',
      REGISTRY_CREDENTIALS__mirror__PASSWORD: 'p',
      REGISTRY_CREDENTIALS__mirror__REGISTRIES: '127.0.0.1',
    });
    const digest = seedIndex(src, 'team/app', '1', 10 * KiB);
    await t.service.handleMessage(
      { source: `${src.host}/team/app:1`, images: ['dropped/app:1'], credential: 'mirror' },
      t.meta(),
    );
    await drain(t);
    expect(dst.getManifest('dropped/app', '1')?.digest).toBe(digest);
  });

  it("hands a dropped request's plan step to the output binding (MessageMeta.handOff): the host sends it and wakes its listener", async () => {
    const t = await setup();
    const digest = seedIndex(src, 'team/app', '1', 10 * KiB);
    const handed: StepMessage[] = [];
    await t.service.handleMessage(
      { source: `${src.host}/team/app:1`, images: ['dropped/app:1'] },
      { ...t.meta(), handOff: (m) => handed.push(m) },
    );
    expect(t.queue.sent).toEqual([]);
    expect(handed).toEqual([{ v: 1, job: expect.any(String), step: 'plan', mac: expect.any(String) }]);
    // signed as any step: it runs the import
    for (const m of handed) await t.service.handleMessage(m, t.meta());
    await drain(t);
    expect(dst.getManifest('dropped/app', '1')?.digest).toBe(digest);
  });

  it('sends a dropped request with a password to the poison queue without the password', async () => {
    const t = await setup({ CREDENTIAL_KEY: Buffer.alloc(32, 1).toString('base64') });
    await t.service.handleMessage(
      { source: `${src.host}/team/app:1`, username: 'u', password: 'queue-secret-1' },
      t.meta(),
    );
    expect(t.queue.sent).toEqual([]);
    expect(t.queue.poisoned).toHaveLength(1);
    expect(JSON.stringify(t.queue.poisoned)).not.toContain('queue-secret-1');
    expect(JSON.stringify(t.queue.poisoned)).toContain('SECRET_IN_QUEUE');
  });

  it('refuses a source that redirects its blobs to a non-public address, unless ALLOWED_SOURCES names that host', async () => {
    for (const [allowed, expected] of [
      ['src', 'failed'],
      ['127.0.0.1', 'succeeded'],
    ] as const) {
      await Promise.all([src?.close(), dst?.close()]);
      [src, dst] = await Promise.all([startFakeRegistry({ redirectBlobsTo: 'other' }), startFakeRegistry()]);
      const t = testService({
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${src.host},${dst.host}`,
        ALLOWED_SOURCES: allowed === 'src' ? src.host : allowed,
        CHUNK_SIZE: '64KiB',
        STEP_BUDGET_SECONDS: '1',
      });
      const digest = seedIndex(src, 'team/app', '1', 20 * KiB);
      const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
      await drain(t);
      const status = await t.service.status(job.id);
      expect(status?.status).toBe(expected);
      if (expected === 'failed') {
        // the storage listener is another port of 127.0.0.1: loopback, and not the listed host:port
        expect(status?.error).toMatchObject({ code: 'PRIVATE_ADDRESS' });
        // checked where the connection is made: the address the socket would have gone to
        expect(status?.error?.message).toMatch(
          /source host 127\.0\.0\.1 is or resolves to the non-public address 127\.0\.0\.1; list it explicitly in ALLOWED_SOURCES/,
        );
        expect(src.redirectRequests).toHaveLength(0);
        expect(dst.getManifest('app', '1')).toBeUndefined();
      } else {
        expect(status?.digest).toBe(digest);
        expect(src.redirectRequests.length).toBeGreaterThan(0);
      }
    }
  });
});
