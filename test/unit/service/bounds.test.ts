/**
 * Bounded work through the queue steps (memory storage, fake registries): a hostile source cannot flood
 * the queue, hold a step past its budget, or keep a job alive for ever; Retry-After is waited, turned
 * into a delayed step (status `waiting`), or refused with RATE_LIMITED.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { initialBlobState } from '../../../lib/engine/copy-blob.js';
import type { StepMessage } from '../../../lib/store/queue.js';
import { SMALL_BLOB_BYTES } from '../../../lib/service/steps.js';
import { OciImportError } from '../../../lib/errors.js';
import type { Digest } from '../../../lib/oci/digest.js';
import { putOciImage, startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { testService, type TestService, type TestServiceOptions } from '../../support/service.js';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** An image of `layers` distinct small layers (stored, unless `store` is false: a plan never reads them). */
function seedImage(reg: FakeRegistry, repo: string, tag: string, layers: number, store = true): string {
  const config = Buffer.from(`{"architecture":"amd64","os":"linux","n":${layers}}`);
  const descriptors = Array.from({ length: layers }, (_, i) => {
    const data = Buffer.from(`layer ${i} of ${tag}`);
    return {
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      digest: store ? reg.putBlob(repo, data) : sha(data),
      size: data.length,
    };
  });
  return putOciImage(reg, repo, tag, config, descriptors);
}

describe('bounded work (memory storage, fake registries)', () => {
  let src: FakeRegistry;
  let dst: FakeRegistry;
  afterEach(async () => {
    await Promise.all([src?.close(), dst?.close()]);
  });

  const setup = async (extra: Record<string, string> = {}, opts: TestServiceOptions = {}): Promise<TestService> => {
    [src, dst] = await Promise.all([startFakeRegistry(), startFakeRegistry()]);
    return testService(
      {
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${src.host},${dst.host}`,
        ALLOWED_SOURCES: src.host,
        CHUNK_SIZE: '64KiB',
        STEP_BUDGET_SECONDS: '2',
        ...extra,
      },
      opts,
    );
  };

  /** Runs every message (a delayed one too) until the queue is empty; returns how many were sent at most at once. */
  const drain = async (
    t: TestService,
    deliver: (m: StepMessage) => Promise<void> = (m) => t.service.handleMessage(m, t.meta()),
  ): Promise<number> => {
    let peak = 0;
    for (let rounds = 0; rounds < 500; rounds++) {
      const batch = t.queue.drain();
      peak = Math.max(peak, batch.length);
      if (batch.length === 0) return peak;
      for (const m of batch) await deliver(m);
    }
    throw new Error('queue did not drain');
  };

  it('a 1,500-layer manifest fails TOO_MANY_BLOBS at plan time, with no blob step ever enqueued', async () => {
    const t = await setup();
    seedImage(src, 'evil/app', '1', 1500, false);
    const job = await t.service.submit({ source: `${src.host}/evil/app:1`, images: ['app:1'] }, 'http');
    const sent: StepMessage[] = [];
    await drain(t, async (m) => {
      sent.push(m);
      await t.service.handleMessage(m, t.meta());
    });
    expect(await t.service.status(job.id)).toMatchObject({
      status: 'failed',
      error: { code: 'TOO_MANY_BLOBS', message: expect.stringContaining('MAX_BLOBS') },
    });
    expect(sent.map((m) => m.step)).toEqual(['plan']);
  });

  it('fans out in batches: never more than one batch plus a hand-over in the queue, each blob enqueued once', async () => {
    const t = await setup({ MAX_BLOBS: '200' });
    const digest = seedImage(src, 'team/app', '1', 100);
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    const blobSteps = new Map<number, number>();
    let peakPerStep = 0;
    await drain(t, async (m) => {
      const before = t.queue.sent.length;
      if (m.step === 'blob' && !blobSteps.has(m.blob!)) blobSteps.set(m.blob!, 0);
      await t.service.handleMessage(m, t.meta());
      peakPerStep = Math.max(peakPerStep, t.queue.sent.length - before);
    });
    expect(await t.service.status(job.id)).toMatchObject({
      status: 'succeeded',
      digest,
      progress: { blobsTotal: 101, blobsDone: 101 },
    });
    expect(peakPerStep).toBeLessThanOrEqual(33);
    expect(blobSteps.size).toBe(101);
  });

  it('a fan-out step delivered three times enqueues each of its blob steps once', async () => {
    const t = await setup({ MAX_BLOBS: '200' });
    seedImage(src, 'team/app', '1', 80);
    await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta()); // plan: the first batch and a fan-out
    const first = t.queue.drain();
    const fanout = first.find((m) => m.step === 'fanout')!;
    expect(fanout).toMatchObject({ from: 32 });
    for (let i = 0; i < 3; i++) await t.service.handleMessage(fanout, t.meta());
    const enqueued = t.queue
      .drain()
      .filter((m) => m.step === 'blob')
      .map((m) => m.blob!);
    expect(enqueued.sort((a, b) => a - b)).toEqual(Array.from({ length: 32 }, (_, i) => 32 + i));
  });

  it('Retry-After: 1 s is waited in the step; 300 s re-enqueues the step with that delay (status waiting); 999999 s fails RATE_LIMITED', async () => {
    const t = await setup();
    const digest = seedImage(src, 'team/app', '1', 2);
    src.faults.push({
      method: 'GET',
      path: /\/manifests\/1$/,
      times: 1,
      action: { kind: 'status', status: 429, headers: { 'Retry-After': '1' } },
    });
    const short = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['short:1'] }, 'http');
    await drain(t);
    expect(await t.service.status(short.id)).toMatchObject({ status: 'succeeded', digest });

    src.faults.push({
      method: 'GET',
      path: /\/manifests\/1$/,
      times: 1,
      action: { kind: 'status', status: 429, headers: { 'Retry-After': '300' } },
    });
    const waiting = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['waiting:1'] }, 'http');
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta());
    const view = await t.service.status(waiting.id);
    expect(view).toMatchObject({ status: 'waiting' });
    expect(Date.parse(view!.waitingUntil!) - Date.now()).toBeGreaterThan(290_000);
    expect(t.queue.sent).toEqual([
      { message: { v: 1, job: waiting.id, step: 'plan', mac: expect.any(String) }, delaySeconds: 300 },
    ]);
    await drain(t); // the delayed step, delivered later: the source answers now
    expect(await t.service.status(waiting.id)).toMatchObject({ status: 'succeeded' });

    src.faults.push({
      method: 'GET',
      path: /\/manifests\/1$/,
      times: 1,
      action: { kind: 'status', status: 429, headers: { 'Retry-After': '999999' } },
    });
    const refused = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['refused:1'] }, 'http');
    const t0 = Date.now();
    await drain(t);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await t.service.status(refused.id)).toMatchObject({
      status: 'failed',
      error: {
        code: 'RATE_LIMITED',
        message: expect.stringMatching(/longer than MAX_RETRY_AFTER_SECONDS \(3600 s\): import again after 20\d\d-/),
      },
    });
  });

  it('a step whose source stalls ends within its budget plus the margin, and the job fails with TIMEOUT after the last attempt', async () => {
    const t = await setup(
      { STEP_BUDGET_SECONDS: '1' },
      {
        stepMarginMs: 500,
        timeouts: { idleMs: 60_000, minBytesPerSecond: 1, rateWindowMs: 60_000 },
        retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
      },
    );
    seedImage(src, 'team/app', '1', 1);
    src.faults.push({ method: 'GET', path: /\/blobs\//, action: { kind: 'stallBody', bytes: 3 } });
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta()); // plan
    const blob = t.queue.drain().find((m) => m.step === 'blob')!;
    for (let attempt = 1; attempt <= 3; attempt++) {
      const t0 = Date.now();
      const outcome = await t.service.handleMessage(blob, t.meta(attempt)).then(
        () => 'ok',
        (e: unknown) => e,
      );
      expect(Date.now() - t0).toBeLessThan(1000 + 500 + 1500);
      expect(outcome).toMatchObject({ code: 'TIMEOUT' });
    }
    expect(await t.service.status(job.id)).toMatchObject({
      status: 'failed',
      error: { code: 'TIMEOUT', message: expect.stringContaining('gave up after 3 attempts') },
    });
  });

  it('an import past MAX_JOB_HOURS fails JOB_EXPIRED; its later steps only clean up', async () => {
    const t = await setup();
    seedImage(src, 'team/app', '1', 2);
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta());
    await t.store.update(job.id, (j) => ({ ...j, expiresAt: new Date(Date.now() - 1000).toISOString() }));
    const requestsBefore = src.requests.length;
    await drain(t);
    expect(await t.service.status(job.id)).toMatchObject({
      status: 'failed',
      error: { code: 'JOB_EXPIRED', message: expect.stringContaining('MAX_JOB_HOURS') },
    });
    expect(src.requests.length).toBe(requestsBefore);
    expect(dst.getManifest('app', '1')).toBeUndefined();
  });

  it('a blob step whose worker dies on every delivery fails the job after maxDequeueCount claims (no endless re-sending)', async () => {
    const t = await setup();
    seedImage(src, 'team/app', '1', 1);
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta());
    const blob = t.queue.drain().find((m) => m.step === 'blob')!;
    // what three deliveries that each took the lease and died left behind: claims 3, the last lease expired
    const initial = initialBlobState({ digest: blob.digest! as Digest, size: blob.size! }, 'app');
    const written = await t.store.blobTask(job.id, blob.blob!); // the fan-out wrote the task from the plan
    await t.store.saveBlobTask(
      job.id,
      blob.blob!,
      { state: initial, lease: { owner: 'dead-worker', until: Date.now() - 1 }, claims: 3 },
      written?.etag,
    );
    await t.service.handleMessage(blob, t.meta(1));
    expect(await t.service.status(job.id)).toMatchObject({
      status: 'failed',
      error: { code: 'STEP_POISONED', message: expect.stringContaining('started 3 times and never finished') },
    });
    expect(dst.getManifest('app', '1')).toBeUndefined();
  });

  it('a small import is done in its plan step: one message, and a handful of storage operations', async () => {
    const t = await setup({ INLINE_IMPORT_BYTES: '16MiB' });
    const digest = seedImage(src, 'team/app', '1', 3);
    const counted = countingDocs(t);
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    const sent: StepMessage[] = [];
    await drain(t, async (m) => {
      sent.push(m);
      await t.service.handleMessage(m, t.meta());
    });
    expect(await t.service.status(job.id)).toMatchObject({
      status: 'succeeded',
      digest,
      progress: { blobsTotal: 4, blobsDone: 4 },
    });
    expect(sent.map((m) => m.step)).toEqual(['plan']);
    // create (job and its list index entry) + plan step: job read, plan absent, plan and blob list written, three job
    // updates of a read and a write each (running, the finalizing mark that ends cancels, succeeded), the two status
    // changes rewriting the index entry too
    process.stdout.write(`[storage operations of a small import] reads ${counted.reads}, writes ${counted.writes}\n`);
    expect(counted.reads + counted.writes).toBeLessThanOrEqual(15);
  });

  it('the blob step that completes an import finalizes it: no queue hop before the tags, a delayed finalize standing by', async () => {
    const t = await setup({ STEP_BUDGET_SECONDS: '60' });
    const digest = seedImage(src, 'team/app', '1', 1);
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta()); // plan
    const blobs = t.queue.drain();
    expect(blobs.map((m) => m.step)).toEqual(['blob', 'blob']);
    await t.service.handleMessage(blobs[0]!, t.meta());
    expect(t.queue.sent).toEqual([]);
    await t.service.handleMessage(blobs[1]!, t.meta());
    expect(await t.service.status(job.id)).toMatchObject({ status: 'succeeded', digest });
    expect(dst.getManifest('app', '1')).toBeDefined();
    // the stand-by finalize: visible once the step's lease is over; delivered, it finds the import ended
    expect(t.queue.sent).toEqual([
      { message: { v: 1, job: job.id, step: 'finalize', mac: expect.any(String) }, delaySeconds: 90 },
    ]);
    const puts = dst.requests.filter((r) => r.method === 'PUT').length;
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta());
    expect(dst.requests.filter((r) => r.method === 'PUT').length).toBe(puts);
    expect(t.queue.sent).toEqual([]);
  });

  it('the blob step that completes an import writes the finalizing mark with its blob: one read-modify-write less before the tags', async () => {
    const t = await setup({ STEP_BUDGET_SECONDS: '60' });
    seedImage(src, 'team/app', '1', 1);
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta()); // plan
    const blobs = t.queue.drain();
    await t.service.handleMessage(blobs[0]!, t.meta());
    const counted = countingDocs(t);
    await t.service.handleMessage(blobs[1]!, t.meta());
    const during = counted.log.filter((op) => op.endsWith(` ${job.id}/job.json`)).map((op) => op.split(' ')[0]);
    expect((await t.service.status(job.id))?.status).toBe('succeeded');
    // the step's own read, the read beside its checkpoint (a cancel), the blob done with the finalizing mark, succeeded
    expect(during).toEqual(['read', 'read', 'read', 'write', 'read', 'write']);
  });

  it('a worker that dies while the last blob step finalizes: the stand-by finalize message finishes the import', async () => {
    const t = await setup({ STEP_BUDGET_SECONDS: '60' });
    const digest = seedImage(src, 'team/app', '1', 1);
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta());
    const blobs = t.queue.drain();
    await t.service.handleMessage(blobs[0]!, t.meta());
    // the target refuses the manifest PUTs of the inline finalize (as a dying worker never sends them)
    dst.faults.push({ method: 'PUT', path: /\/manifests\//, times: 20, action: { kind: 'reset' } });
    await expect(t.service.handleMessage(blobs[1]!, t.meta())).rejects.toThrow();
    expect((await t.service.status(job.id))?.status).toBe('running');
    const standBy = t.queue.drain();
    expect(standBy.map((m) => m.step)).toEqual(['finalize']);
    dst.faults.length = 0; // a new worker, the registry answering again
    await t.service.handleMessage(standBy[0]!, t.meta());
    expect(await t.service.status(job.id)).toMatchObject({ status: 'succeeded', digest });
  });

  it('INLINE_IMPORT_BYTES bounds what a plan step copies: an import above it (or with 0) fans out to blob steps', async () => {
    // 64 bytes: the config and one layer fit (45 + 14 bytes), copied in the plan step as small blobs; 0: none
    for (const [i, [setting, blobSteps]] of (
      [
        ['0', 4],
        ['64', 2],
      ] as const
    ).entries()) {
      if (i > 0) await Promise.all([src.close(), dst.close()]); // the last pair is closed by afterEach
      const t = await setup({ INLINE_IMPORT_BYTES: setting });
      seedImage(src, 'team/app', '1', 3);
      const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
      const steps: string[] = [];
      await drain(t, async (m) => {
        steps.push(m.step);
        await t.service.handleMessage(m, t.meta());
      });
      expect(await t.service.status(job.id), setting).toMatchObject({
        status: 'succeeded',
        progress: { blobsTotal: 4, blobsDone: 4 },
      });
      expect(
        steps.filter((s) => s === 'blob'),
        setting,
      ).toHaveLength(blobSteps);
      expect(steps.at(-1), setting).toBe('finalize');
    }
  });

  /** An image of one layer too large for a plan step, a small layer and a config, in `src`. */
  const seedLarge = () => {
    const big = Buffer.alloc(SMALL_BLOB_BYTES + 1, 7);
    const small = Buffer.from('a small layer');
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layer = (data: Buffer) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      digest: src.putBlob('team/app', data),
      size: data.length,
    });
    return { big, small, config, digest: putOciImage(src, 'team/app', '1', config, [layer(big), layer(small)]) };
  };

  /** Delivers every message as `drain` does and keeps them. */
  const drainAll = async (t: TestService): Promise<StepMessage[]> => {
    const seen: StepMessage[] = [];
    await drain(t, async (m) => {
      seen.push(m);
      await t.service.handleMessage(m, t.meta());
    });
    return seen;
  };

  it('an import too large for its plan step still copies its small blobs there: only the large one gets a blob step', async () => {
    const t = await setup({ INLINE_IMPORT_BYTES: '1MiB' });
    const { big, small, config, digest } = seedLarge();
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    const steps = await drainAll(t);
    expect(await t.service.status(job.id)).toMatchObject({
      status: 'succeeded',
      digest,
      progress: { blobsTotal: 3, blobsDone: 3 },
    });
    expect(steps.filter((m) => m.step === 'blob').map((m) => m.digest)).toEqual([sha(big)]);
    for (const data of [big, small, config]) expect(dst.getBlob(sha(data))).toBeDefined();
  });

  it('the plan step of an import that fans out reads its job record once, and then only to update it', async () => {
    const t = await setup({ INLINE_IMPORT_BYTES: '1MiB' });
    seedLarge();
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    const plan = t.queue.drain();
    expect(plan.map((m) => m.step)).toEqual(['plan']);
    const counted = countingDocs(t);
    await t.service.handleMessage(plan[0]!, t.meta());
    expect(t.queue.drain().map((m) => m.step)).toEqual(['blob']);
    // the step's own read, then the reads of three read-modify-writes: running, the fan-out's batch mark, the small
    // blobs done (the fan-out and the small blobs go on with the record the update before them returned)
    expect(counted.log.filter((op) => op === `read ${job.id}/job.json`)).toHaveLength(4);
  });

  it('a small blob the plan step fails to copy gets a blob step of its own, and the import ends', async () => {
    const t = await setup({ INLINE_IMPORT_BYTES: '1MiB' });
    const { big, small, digest } = seedLarge();
    src.faults.push({ method: 'GET', path: new RegExp(sha(small)), action: { kind: 'status', status: 404 }, times: 1 });
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    const steps = await drainAll(t);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'succeeded', digest });
    expect(
      steps
        .filter((m) => m.step === 'blob')
        .map((m) => m.digest)
        .sort(),
    ).toEqual([sha(big), sha(small)].sort());
    expect(Buffer.from(dst.getBlob(sha(small))!).equals(small)).toBe(true);
  });

  it('the large blob first, the small ones after: the plan step whose record completes the set sends the finalize', async () => {
    const t = await setup({ INLINE_IMPORT_BYTES: '1MiB' });
    const { big, small, digest } = seedLarge();
    src.faults.push({ method: 'GET', path: new RegExp(sha(small)), action: { kind: 'delay', ms: 400 } });
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    const [plan] = t.queue.drain();
    const planning = t.service.handleMessage(plan!, t.meta());
    // the fan-out sends the large blob's step before the small blobs are copied: it runs and ends meanwhile
    let sent: StepMessage[] = [];
    while (!(sent = t.queue.drain()).length) await new Promise((r) => setTimeout(r, 10));
    expect(sent.map((m) => [m.step, m.step === 'blob' ? m.digest : undefined])).toEqual([['blob', sha(big)]]);
    await t.service.handleMessage(sent[0]!, t.meta());
    expect(t.queue.drain()).toEqual([]);
    await planning;
    const after = t.queue.drain();
    expect(after.map((m) => m.step)).toEqual(['finalize']);
    for (const m of after) await t.service.handleMessage(m, t.meta());
    expect(await t.service.status(job.id)).toMatchObject({ status: 'succeeded', digest });
  });

  it('a plan step that dies after its fan-out, before it records its small blobs, is run again: they are recorded then, the large blob is sent once', async () => {
    const t = await setup({ INLINE_IMPORT_BYTES: '1MiB' });
    const { big, small, config, digest } = seedLarge();
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    const [plan] = t.queue.drain();
    // storage goes away the moment the small blobs are in the target: the plan step cannot record them
    const { put } = t.docs;
    let failed = 0;
    t.docs.put = (async (...args: Parameters<typeof put>) => {
      if (!failed && dst.getBlob(sha(small)) && dst.getBlob(sha(config))) {
        failed++;
        throw new OciImportError('STORAGE_ERROR', 'job storage write failed (503)', {
          temporary: true,
          side: 'storage',
        });
      }
      return put.apply(t.docs, args);
    }) as typeof t.docs.put;
    await expect(t.service.handleMessage(plan!, t.meta())).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
    expect(failed).toBe(1);
    const sent = t.queue.drain();
    expect(sent.map((m) => [m.step, m.step === 'blob' ? m.digest : undefined])).toEqual([['blob', sha(big)]]);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'running', progress: { blobsDone: 0 } });
    // the queue delivers the plan message again: the small blobs are copied (found in the target) and recorded,
    // and nothing is sent twice
    await t.service.handleMessage(plan!, t.meta(2));
    expect(t.queue.drain()).toEqual([]);
    expect(await t.service.status(job.id)).toMatchObject({
      status: 'running',
      progress: { blobsTotal: 3, blobsDone: 2 },
    });
    await t.service.handleMessage(sent[0]!, t.meta());
    await drain(t);
    expect(await t.service.status(job.id)).toMatchObject({
      status: 'succeeded',
      digest,
      progress: { blobsTotal: 3, blobsDone: 3 },
    });
    expect(Buffer.from(dst.getBlob(sha(big))!).equals(big)).toBe(true);
  });
});

/** Counts the storage operations of a test service's documents from now on, and lists them (`read <path>`, `write <path>`). */
function countingDocs(t: TestService): { reads: number; writes: number; log: string[] } {
  const counts = { reads: 0, writes: 0, log: [] as string[] };
  const { get, put } = t.docs;
  t.docs.get = (async (path: string) => {
    counts.reads++;
    counts.log.push(`read ${path}`);
    return get.call(t.docs, path);
  }) as typeof t.docs.get;
  t.docs.put = (async (...args: Parameters<typeof put>) => {
    counts.writes++;
    counts.log.push(`write ${args[0]}`);
    return put.apply(t.docs, args);
  }) as typeof t.docs.put;
  return counts;
}
