/**
 * A failed attempt leaves no upload session open on the target (issue 22, finding 6): the review counted 5 open
 * sessions per failed import (one per delivery of a small import's plan step). Sessions nobody can resume (no
 * checkpoint: the plan step's inline copy, the CLI) are cancelled when the attempt fails; a blob step's saved
 * session is resumed by its next delivery, and cancelled when the job fails.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { StepMessage } from '../../../lib/store/queue.js';
import { startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { testService, type TestService } from '../../support/service.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function seedImage(reg: FakeRegistry): { layer: string } {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const data = Buffer.alloc(200_000, 7);
  const layer = reg.putBlob('team/app', data);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: reg.putBlob('team/app', config),
        size: config.length,
      },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: data.length }],
    }),
  );
  reg.putManifest('team/app', '1', manifest, OCI_MANIFEST);
  return { layer };
}

/** Sessions the target opened and nobody closed (a plain POST or a mount answered 202; a final PUT or a DELETE closes). */
function openSessions(dst: FakeRegistry): number {
  return dst.openUploads();
}

describe('failed attempts close their upload sessions (memory storage, fake registries)', () => {
  let src: FakeRegistry;
  let dst: FakeRegistry;
  afterEach(async () => {
    await Promise.all([src?.close(), dst?.close()]);
  });

  const setup = async (env: Record<string, string> = {}): Promise<TestService> => {
    [src, dst] = await Promise.all([startFakeRegistry(), startFakeRegistry()]);
    return testService(
      {
        TARGET_REGISTRY: dst.host,
        INSECURE_REGISTRIES: `${src.host},${dst.host}`,
        ALLOWED_SOURCES: src.host,
        CHUNK_SIZE: '64KiB',
        ...env,
      },
      { retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } },
    );
  };

  /** Delivers `message` as the host would, `deliveries` times while it throws. */
  const deliver = async (t: TestService, message: StepMessage, deliveries: number): Promise<void> => {
    for (let n = 1; n <= deliveries; n++) {
      if (
        await t.service.handleMessage(message, t.meta(n)).then(
          () => true,
          () => false,
        )
      )
        return;
    }
  };

  it('a small import copied in its plan step: every failed delivery closes the session it opened (0 open after 3, not 3)', async () => {
    const t = await setup({ INLINE_IMPORT_BYTES: '16MiB' });
    const { layer } = seedImage(src);
    // the layer's bytes fail on every read: each delivery opens a session for it, then gives up
    src.faults.push({ method: 'GET', path: new RegExp(`/blobs/${layer}`), action: { kind: 'status', status: 500 } });
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    await deliver(t, t.queue.drain()[0]!, 3);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'failed' });
    const started = dst.requests.filter((r) => r.method === 'POST' && r.url.includes('/blobs/uploads/')).length;
    process.stdout.write(`[failed small import] ${started} sessions started, ${openSessions(dst)} left open\n`);
    expect(started).toBeGreaterThanOrEqual(3);
    expect(openSessions(dst)).toBe(0);
  });

  it('a blob step keeps its session for the next delivery, and closes it when the job fails', async () => {
    const t = await setup({ STEP_BUDGET_SECONDS: '5' });
    const { layer } = seedImage(src);
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta());
    const step = t.queue.drain().find((m) => m.step === 'blob' && m.digest === layer)!;
    // the first 64 KiB arrive, then the source fails for good
    let served = 0;
    src.onRequest = (r) => {
      if (r.method === 'GET' && r.url.includes(layer) && served++ >= 1)
        src.faults.splice(0, src.faults.length, {
          method: 'GET',
          path: new RegExp(layer),
          action: { kind: 'status', status: 500 },
        });
    };
    await deliver(t, step, 1);
    expect(openSessions(dst)).toBe(1); // resumable: the next delivery continues it
    await deliver(t, step, 3);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'failed' });
    expect(openSessions(dst)).toBe(0);
  });
});
