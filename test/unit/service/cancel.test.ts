/**
 * Canceling an import on memory storage against fake registries: a running blob step stops within one chunk
 * (counted in PATCHes the target received after the cancel), cancels its upload session on the target (the
 * DELETE is seen) and tags nothing; later messages only clean up; a plan step that was running when the cancel
 * came does not bring the job back; an ended import, or one writing its tags, cannot be canceled.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { HEARTBEAT_MS } from '../../../lib/engine/copy-blob.js';
import type { StepMessage } from '../../../lib/store/queue.js';
import { startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { blobStep, testService, type TestService } from '../../support/service.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const KiB = 1024;

function seedImage(reg: FakeRegistry, repo: string, tag: string, layerSize: number): string {
  const layer = Buffer.alloc(layerSize);
  for (let i = 0; i < layerSize; i += 32) createHash('sha256').update(`layer:${i}`).digest().copy(layer, i);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: reg.putBlob(repo, config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: reg.putBlob(repo, layer), size: layer.length },
      ],
    }),
  );
  return reg.putManifest(repo, tag, manifest, OCI_MANIFEST);
}

describe('canceling an import', () => {
  let src: FakeRegistry;
  let dst: FakeRegistry;
  afterEach(async () => {
    await Promise.all([src?.close(), dst?.close()]);
  });

  const setup = async (extra: Record<string, string> = {}): Promise<TestService> => {
    [src, dst] = await Promise.all([startFakeRegistry(), startFakeRegistry()]);
    return testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
      CHUNK_SIZE: '64KiB',
      STEP_BUDGET_SECONDS: '60',
      ...extra,
    });
  };
  const run = (t: TestService, m: StepMessage) => t.service.handleMessage(m, t.meta());
  const patches = (reg: FakeRegistry) => reg.requests.filter((r) => r.method === 'PATCH').length;

  it('stops a running blob step within one chunk, cancels its upload session, and tags nothing', async () => {
    const t = await setup();
    seedImage(src, 'team/big', '1', 2048 * KiB); // 32 chunks of 64 KiB
    dst.faults.push({ method: 'PATCH', action: { kind: 'delay', ms: 40 } });
    const job = await t.service.submit({ source: `${src.host}/team/big:1`, images: ['big:1'] }, 'http');
    await run(t, t.queue.drain()[0]!); // plan
    const blobs = t.queue.drain();
    expect(blobs.map((m) => m.step)).toEqual(['blob', 'blob']);
    const layer = blobStep(blobs.find((m) => m.step === 'blob' && m.size === 2048 * KiB));

    const step = run(t, layer);
    while (patches(dst) < 4) await new Promise((r) => setTimeout(r, 5));
    const outcome = await t.service.cancel(job.id);
    const atCancel = patches(dst);
    expect(outcome.kind).toBe('canceled');
    await step; // ends normally: a cancel is no failure of the step

    expect(patches(dst) - atCancel).toBeLessThanOrEqual(1);
    expect(patches(dst)).toBeLessThan(32);
    const deletes = dst.requests.filter((r) => r.method === 'DELETE' && r.url.includes('/blobs/uploads/'));
    expect(deletes.length).toBe(1);
    expect((await t.store.blobTask(job.id, layer.blob))?.task).toMatchObject({ state: { phase: 'pending' } });
    expect((await t.store.blobTask(job.id, layer.blob))?.task.lease).toBeUndefined();
    expect(t.queue.sent.filter((s) => s.message.step === 'blob' && s.message.blob === layer.blob)).toEqual([]); // not re-enqueued

    // the other blob's message and a finalize arriving later do nothing but clean up
    for (const m of [...blobs.filter((b) => b !== layer), { v: 1 as const, job: job.id, step: 'finalize' as const }])
      await run(t, m);
    expect(dst.requests.filter((r) => r.method === 'PUT' && r.url.includes('/manifests/'))).toEqual([]);
    expect(dst.tags('big')).toEqual([]);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'canceled', error: { code: 'CANCELED' } });
  });

  it('stops a blob step within a heartbeat of the cancel while its source trickles, before its first chunk (streamed) is on its way', async () => {
    // CHUNK_SIZE not set: the step streams the session's first write as one PATCH
    const t = await setup({ CHUNK_SIZE: '' });
    seedImage(src, 'team/big', '1', 2048 * KiB);
    const job = await t.service.submit({ source: `${src.host}/team/big:1`, images: ['big:1'] }, 'http');
    await run(t, t.queue.drain()[0]!); // plan
    const layer = blobStep(t.queue.drain().find((m) => m.step === 'blob' && m.size === 2048 * KiB));
    src.faults.push({ method: 'GET', path: /\/blobs\/sha256/, action: { kind: 'trickle', intervalMs: 50 } });

    const step = run(t, layer);
    // the session is open and the layer's GET trickles: the step waits for the first block of its stream
    while (!dst.requests.some((r) => r.method === 'POST')) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 300));
    expect((await t.service.cancel(job.id)).kind).toBe('canceled');
    const canceledAt = Date.now();
    await step; // ends normally: a cancel is no failure of the step
    // the next heartbeat reads the job (HEARTBEAT_MS), not the end of the 60 s budget
    expect(Date.now() - canceledAt).toBeLessThan(HEARTBEAT_MS + 1500);
    expect(dst.requests.filter((r) => r.method === 'PATCH' || r.method === 'PUT')).toEqual([]);
    expect(dst.requests.filter((r) => r.method === 'DELETE' && r.url.includes('/blobs/uploads/'))).toHaveLength(1);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'canceled' });
  });

  it('a plan step running when the cancel comes does not bring the job back, and enqueues no blob', async () => {
    const t = await setup();
    seedImage(src, 'team/app', '1', 100 * KiB);
    src.faults.push({ method: 'GET', path: /\/manifests\//, times: 1, action: { kind: 'delay', ms: 300 } });
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    const plan = run(t, t.queue.drain()[0]!);
    await new Promise((r) => setTimeout(r, 100));
    expect((await t.service.cancel(job.id)).kind).toBe('canceled');
    await plan;
    expect((await t.service.status(job.id))?.status).toBe('canceled');
    expect(t.queue.drain()).toEqual([]);
  });

  it('a small import copied in its plan step and canceled while its blobs upload: nothing tagged, the job stays canceled', async () => {
    const t = await setup({ INLINE_IMPORT_BYTES: '16MiB' });
    seedImage(src, 'team/app', '1', 100 * KiB);
    dst.faults.push({ method: 'PUT', path: /\/blobs\/uploads\//, action: { kind: 'delay', ms: 300 } });
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    const plan = run(t, t.queue.drain()[0]!);
    while (!dst.requests.some((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/')))
      await new Promise((r) => setTimeout(r, 5));
    expect((await t.service.cancel(job.id)).kind).toBe('canceled');
    await plan;
    expect(dst.requests.filter((r) => r.method === 'PUT' && r.url.includes('/manifests/'))).toEqual([]);
    expect(dst.tags('app')).toEqual([]);
    expect(t.queue.drain()).toEqual([]);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'canceled', error: { code: 'CANCELED' } });
  });

  it('refuses to cancel an import that ended, or that is writing its tags', async () => {
    const t = await setup();
    seedImage(src, 'team/app', '1', 10 * KiB);
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    for (let m = t.queue.drain(); m.length; m = t.queue.drain()) await Promise.all(m.map((x) => run(t, x)));
    expect(await t.service.cancel(job.id)).toMatchObject({ kind: 'ended', job: { status: 'succeeded' } });

    const other = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:2'] }, 'http');
    await t.store.update(other.id, (j) => ({ ...j, status: 'running', finalizing: true }));
    expect(await t.service.cancel(other.id)).toMatchObject({ kind: 'finalizing', job: { status: 'running' } });
    expect(await t.service.cancel('00000000-0000-4000-8000-000000000000')).toEqual({ kind: 'missing' });

    const third = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:3'] }, 'http');
    expect((await t.service.cancel(third.id)).kind).toBe('canceled');
    expect(await t.service.cancel(third.id)).toMatchObject({ kind: 'ended', job: { status: 'canceled' } });
  });
});
