/**
 * What a step finds when its job's context changed under it, on memory storage against fake registries: a message for
 * a job that is gone, stored inline credentials that can no longer be opened, a named credential removed from the
 * configuration. (Survivors of the mutation run of lib/service/service.ts, docs/testing.md.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryDocuments } from '../../../lib/store/documents.js';
import { MemoryJobQueue, type StepMessage } from '../../../lib/store/queue.js';
import { startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { testService } from '../../support/service.js';

const CREDENTIAL_KEY = Buffer.alloc(32, 7).toString('base64');

describe('a step whose job changed under it', () => {
  let src: FakeRegistry;
  let dst: FakeRegistry;
  afterEach(async () => {
    await Promise.all([src?.close(), dst?.close()]);
  });

  const base = async () => {
    [src, dst] = await Promise.all([startFakeRegistry(), startFakeRegistry()]);
    return {
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
      CREDENTIAL_KEY,
    };
  };

  it('drops a message for a job that is gone: a warning, nothing sent, nothing poisoned, no retry', async () => {
    const t = testService(await base());
    const message = t.sign({ v: 1, job: '0f0e0d0c-0b0a-4908-8706-050403020100', step: 'plan' });
    await t.service.handleMessage(message, t.meta());
    expect(t.logs).toEqual(['message for unknown job 0f0e0d0c-0b0a-4908-8706-050403020100 dropped']);
    expect(t.queue.sent).toEqual([]);
    expect(t.queue.poisoned).toEqual([]);
  });

  it('fails the import with INVALID_REQUEST when its stored credentials cannot be read (no CREDENTIAL_KEY any more)', async () => {
    const env = await base();
    const docs = new MemoryDocuments();
    const queue = new MemoryJobQueue();
    const before = testService(env, { docs, queue });
    const job = await before.service.submit(
      { source: `${src.host}/team/app:1`, images: ['app:1'], username: 'u', password: 'secret-password' },
      'http',
    );
    const { CREDENTIAL_KEY: _gone, ...withoutKey } = env;
    const after = testService(withoutKey, { docs, queue });
    await after.service.handleMessage(queue.drain()[0] as StepMessage, after.meta());
    const status = await after.service.status(job.id);
    expect(status).toMatchObject({ status: 'failed', error: { code: 'INVALID_REQUEST' } });
    expect(status!.error!.message).toMatch(/stored credentials of this import cannot be read/);
    expect(src.requests).toEqual([]);
  });

  it('fails the import with INVALID_REQUEST when its named credential was removed from the configuration', async () => {
    const env = {
      ...(await base()),
      REGISTRY_CREDENTIALS__mirror__USERNAME: 'u',
      REGISTRY_CREDENTIALS__mirror__PASSWORD: 'p',
      REGISTRY_CREDENTIALS__mirror__REGISTRIES: '127.0.0.1',
    };
    const docs = new MemoryDocuments();
    const queue = new MemoryJobQueue();
    const before = testService(env, { docs, queue });
    const job = await before.service.submit(
      { source: `${src.host}/team/app:1`, images: ['app:1'], credential: 'mirror' },
      'http',
    );
    const {
      REGISTRY_CREDENTIALS__mirror__USERNAME: _u,
      REGISTRY_CREDENTIALS__mirror__PASSWORD: _p,
      REGISTRY_CREDENTIALS__mirror__REGISTRIES: _r,
      ...withoutMirror
    } = env;
    const after = testService(withoutMirror, { docs, queue });
    await after.service.handleMessage(queue.drain()[0] as StepMessage, after.meta());
    const status = await after.service.status(job.id);
    expect(status).toMatchObject({ status: 'failed', error: { code: 'INVALID_REQUEST' } });
    expect(status!.error!.message).toBe('the credential "mirror" of this import is no longer configured');
  });
});
