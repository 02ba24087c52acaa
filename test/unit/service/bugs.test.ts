/**
 * A bug reaching the queue: a step that throws an error nobody classified (a TypeError) fails its job at once,
 * with INTERNAL and the error's message — not retried on every delivery until maxDequeueCount (lib/errors.ts).
 * A temporary failure of the same place is still thrown for the host to deliver again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { OciImportError } from '../../../lib/errors.js';
import { seedOneLayerImage, startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { testService } from '../../support/service.js';

describe('a bug in a queue step', () => {
  let src: FakeRegistry;
  let dst: FakeRegistry;
  afterEach(async () => {
    await Promise.all([src?.close(), dst?.close()]);
  });

  it.each([
    [
      'a TypeError fails the job at once, INTERNAL',
      () => new TypeError('cannot read properties of undefined'),
      'failed',
    ],
    [
      'a temporary storage failure is thrown for another delivery',
      () => new OciImportError('STORAGE_ERROR', 'flaky', { temporary: true, side: 'storage' }),
      'thrown',
    ],
  ] as const)('%s', async (_name, failure, outcome) => {
    [src, dst] = await Promise.all([startFakeRegistry(), startFakeRegistry()]);
    const t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
      CHUNK_SIZE: '64KiB',
    });
    seedOneLayerImage(src, 'team/app', '1', Buffer.alloc(300 * 1024, 7));
    const job = await t.service.submit({ source: `${src.host}/team/app:1`, images: ['app:1'] }, 'http');
    // the first step (the plan) writes blob checkpoints: that is where the "bug" is
    const put = t.docs.put.bind(t.docs);
    let thrown = 0;
    t.docs.put = async (path, value, condition, metadata) => {
      if (/blob-\d+\.json$/.test(path)) {
        thrown++;
        throw failure();
      }
      return put(path, value, condition, metadata);
    };
    const first = t.queue.drain()[0];
    const handled = t.service.handleMessage(first, t.meta(1));
    if (outcome === 'failed') {
      await handled;
      const after = await t.store.get(job.id);
      expect(after?.status).toBe('failed');
      expect(after?.error).toMatchObject({
        code: 'INTERNAL',
        message: expect.stringContaining('cannot read properties of undefined'),
      });
    } else {
      await expect(handled).rejects.toMatchObject({ code: 'STORAGE_ERROR' });
      expect((await t.store.get(job.id))?.status).not.toBe('failed');
    }
    // attempted once in-process either way (the plan step's write is not inside a retry loop of its own)
    expect(thrown).toBeGreaterThanOrEqual(1);
  });
});
