/**
 * The queue as a trust boundary (issue 22, finding 1): whoever may drop import requests on the queue can write a
 * message shaped like a step. Given only a victim's job id, such a message must do nothing — no request to any
 * registry with the victim's sealed credentials, no write into the victim's repository, no change to the victim's
 * job — whether it carries no tag, another job's tag, or (a leaked key) a valid tag for a step outside the plan.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { cancelJob } from '../../../lib/service/cancel.js';
import { signStep, type StepMessage } from '../../../lib/store/queue.js';
import { startFakeRegistry, type FakeRegistry } from '../../support/fake-registry.js';
import { testService, TEST_MESSAGE_KEY, type TestService } from '../../support/service.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const CREDENTIAL_KEY = Buffer.alloc(32, 3).toString('base64');
const USER = 'victim';
const PASSWORD = 'victim-source-password';

function seedImage(reg: FakeRegistry, repo: string, tag: string, layers: number): string {
  const config = Buffer.from(`{"architecture":"amd64","os":"linux","n":${layers},"tag":"${tag}"}`);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: reg.putBlob(repo, config),
        size: config.length,
      },
      layers: Array.from({ length: layers }, (_, i) => {
        const data = Buffer.from(`layer ${i} of ${repo}:${tag}`);
        return {
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: reg.putBlob(repo, data),
          size: data.length,
        };
      }),
    }),
  );
  return reg.putManifest(repo, tag, manifest, OCI_MANIFEST);
}

describe('forged step messages do nothing (memory storage, fake registries)', () => {
  let src: FakeRegistry;
  let dst: FakeRegistry;
  afterEach(async () => {
    await Promise.all([src?.close(), dst?.close()]);
  });

  /** A victim import with inline (sealed) credentials, planned: its blob steps are queued, none has run. */
  const victim = async (env: Record<string, string> = {}) => {
    [src, dst] = await Promise.all([
      startFakeRegistry({ auth: { kind: 'basic', username: USER, password: PASSWORD } }),
      startFakeRegistry(),
    ]);
    seedImage(src, 'team/app', '1', 2);
    // what the victim never asked for: another repository of the same source, readable with the same password
    const secret = Buffer.from('the contents of a private layer');
    const secretDigest = src.putBlob('team/private', secret);
    const t = testService({
      TARGET_REGISTRY: dst.host,
      INSECURE_REGISTRIES: `${src.host},${dst.host}`,
      ALLOWED_SOURCES: src.host,
      CREDENTIAL_KEY,
      STEP_BUDGET_SECONDS: '5',
      ...env,
    });
    const job = await t.service.submit(
      { source: `${src.host}/team/app:1`, images: ['app:1'], username: USER, password: PASSWORD },
      'http',
    );
    await t.service.handleMessage(t.queue.drain()[0]!, t.meta()); // plan
    const queued = t.queue.drain();
    expect(queued.map((m) => m.step)).toEqual(['blob', 'blob', 'blob']);
    return { t, job, queued, secret, secretDigest };
  };

  /** Everything the job's folder holds, as text: a forged message must leave it byte for byte. */
  const snapshot = (t: TestService, id: string) =>
    [...t.docs.dump()]
      .filter(([path]) => path.startsWith(`${id}/`))
      .sort()
      .map(([p, v]) => `${p}\n${v}`)
      .join('\n');
  const requests = () => src.requests.length + dst.requests.length;

  /** Delivers `message` and says what it caused: requests, the job's change, what went to the poison queue. */
  const deliver = async (t: TestService, id: string, message: unknown) => {
    const before = { requests: requests(), job: snapshot(t, id), poisoned: t.queue.poisoned.length };
    await t.service.handleMessage(message, t.meta());
    return {
      requests: requests() - before.requests,
      jobChanged: snapshot(t, id) !== before.job,
      poisoned: t.queue.poisoned.slice(before.poisoned),
      enqueued: t.queue.drain(),
    };
  };

  it("a blob step without the app's tag is refused unread: no request, the job untouched, a reason on the poison queue", async () => {
    const { t, job, secretDigest } = await victim();
    // the review's attack: another blob, 200 GiB, into the victim's repository with the victim's credentials
    const forged = { v: 1, job: job.id, step: 'blob', blob: 0, digest: secretDigest, size: 200 * 1024 ** 3 };
    const outcome = await deliver(t, job.id, forged);
    expect(outcome).toEqual({
      requests: 0,
      jobChanged: false,
      enqueued: [],
      poisoned: [{ v: 1, rejected: { reason: 'STEP_NOT_AUTHENTIC', length: JSON.stringify(forged).length } }],
    });
    expect(t.logs.join('\n')).toMatch(/a blob message naming job .* was refused \[STEP_NOT_AUTHENTIC\]/);
    expect(src.requests.some((r) => r.url.includes('team/private'))).toBe(false);
  });

  it("a tag taken from another job's genuine message does not fit the victim's job", async () => {
    const { t, job } = await victim();
    const mine = await t.service.submit(
      { source: `${src.host}/team/app:1`, images: ['mine:1'], username: USER, password: PASSWORD },
      'http',
    );
    const genuine = t.queue.drain().find((m) => m.job === mine.id)!;
    expect(genuine.mac).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const replayed = { ...genuine, job: job.id };
    const outcome = await deliver(t, job.id, replayed);
    expect(outcome).toMatchObject({
      requests: 0,
      jobChanged: false,
      enqueued: [],
      poisoned: [{ rejected: { reason: 'STEP_NOT_AUTHENTIC' } }],
    });
  });

  it("a tag is over every field: the victim's own genuine blob message with another digest, size or index is refused", async () => {
    const { t, job, queued, secretDigest } = await victim();
    const genuine = queued[0]!;
    for (const changed of [{ digest: secretDigest }, { size: 200 * 1024 ** 3 }, { blob: 2 }, { step: 'finalize' }]) {
      const outcome = await deliver(t, job.id, { ...genuine, ...changed });
      expect(outcome, JSON.stringify(changed)).toMatchObject({
        requests: 0,
        jobChanged: false,
        poisoned: [{ rejected: { reason: 'STEP_NOT_AUTHENTIC' } }],
      });
    }
  });

  it('with the key leaked, a step outside the plan still sends nothing: an index past blobsTotal, another digest, another size', async () => {
    const { t, job, queued, secretDigest } = await victim();
    const leaked = (m: StepMessage) => signStep({ current: Buffer.from(TEST_MESSAGE_KEY, 'base64') }, m);
    const genuine = queued[0]!;
    for (const forged of [
      { ...genuine, blob: 7 },
      { ...genuine, blob: 3 },
      { ...genuine, digest: secretDigest },
      { ...genuine, size: 200 * 1024 ** 3 },
      { v: 1 as const, job: job.id, step: 'fanout' as const, from: 5 },
      { v: 1 as const, job: job.id, step: 'fanout' as const, from: 64 },
    ]) {
      const outcome = await deliver(t, job.id, leaked(forged));
      expect(outcome, JSON.stringify(forged)).toMatchObject({
        requests: 0,
        jobChanged: false,
        enqueued: [],
        poisoned: [{ rejected: { reason: 'STEP_NOT_IN_PLAN' } }],
      });
    }
    // and the victim's own steps still complete the import as planned
    for (const m of queued) await t.service.handleMessage(m, t.meta());
    expect(await t.service.status(job.id)).toMatchObject({
      status: 'succeeded',
      progress: { blobsTotal: 3, blobsDone: 3 },
    });
    expect(dst.getBlob(secretDigest)).toBeUndefined();
  });

  it('a forged finalize leaves a running job running and cancelable, even with a valid tag (blobs 0…n−1 not done)', async () => {
    const { t, job, queued } = await victim();
    await t.service.handleMessage(queued[0]!, t.meta()); // one blob of three done: the job is running
    expect((await t.store.get(job.id))!.status).toBe('running');
    const unsigned = await deliver(t, job.id, { v: 1, job: job.id, step: 'finalize' });
    expect(unsigned).toMatchObject({
      requests: 0,
      jobChanged: false,
      poisoned: [{ rejected: { reason: 'STEP_NOT_AUTHENTIC' } }],
    });
    const signed = await deliver(t, job.id, t.sign({ v: 1, job: job.id, step: 'finalize' }));
    expect(signed).toMatchObject({
      requests: 0,
      jobChanged: false,
      poisoned: [{ rejected: { reason: 'STEP_NOT_IN_PLAN' } }],
    });
    expect(signed.poisoned).toHaveLength(1);
    const record = (await t.store.get(job.id))!;
    expect(record.status).toBe('running');
    expect(record.finalizing).toBeUndefined();
    expect((await cancelJob(t.store, job.id)).kind).toBe('canceled');
  });

  it("a step message written straight onto the poison queue does not fail the victim's job; the app's own still does", async () => {
    const { t, job } = await victim();
    const meta = { maxDequeueCount: 5, log: t.meta().log, messageId: 'forged-1' };
    const before = snapshot(t, job.id);
    await t.service.handlePoison({ v: 1, job: job.id, step: 'finalize' }, meta);
    expect(snapshot(t, job.id)).toBe(before);
    const kept = [...t.docs.dump()]
      .filter(([p]) => p.startsWith('poisoned/'))
      .map(([, v]) => JSON.parse(v) as Record<string, unknown>);
    expect(kept).toEqual([
      expect.objectContaining({ kind: 'rejected', reason: 'STEP_NOT_AUTHENTIC', messageId: 'forged-1' }),
    ]);
    await t.service.handlePoison(t.sign({ v: 1, job: job.id, step: 'finalize' }), meta);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'failed', error: { code: 'STEP_POISONED' } });
  });

  it("MESSAGE_KEY rotates: a message made with the previous key is still the app's while MESSAGE_KEY_PREVIOUS holds it", async () => {
    const { t, job, queued } = await victim();
    const next = Buffer.alloc(32, 0x77).toString('base64');
    const rotated = testService(
      { ...t.env, MESSAGE_KEY: next, MESSAGE_KEY_PREVIOUS: TEST_MESSAGE_KEY },
      { docs: t.docs, queue: t.queue },
    );
    await rotated.service.handleMessage(queued[0]!, rotated.meta());
    expect((await rotated.store.get(job.id))!.doneBlobs).toHaveLength(1);
    // once the previous key is dropped, what it made is no longer the app's
    const after = testService({ ...t.env, MESSAGE_KEY: next }, { docs: t.docs, queue: t.queue });
    const outcome = await deliver(after, job.id, queued[1]!);
    expect(outcome).toMatchObject({
      requests: 0,
      jobChanged: false,
      poisoned: [{ rejected: { reason: 'STEP_NOT_AUTHENTIC' } }],
    });
    // and what the rotated service sends is signed with the new key
    for (const m of queued.slice(1)) await rotated.service.handleMessage(m, rotated.meta());
    expect(await rotated.service.status(job.id)).toMatchObject({ status: 'succeeded' });
    expect(rotated.queue.sent.map((s) => s.message.step)).toEqual(['finalize']); // the stand-by finalize
    for (const s of rotated.queue.sent) expect(s.message).toEqual(rotated.sign(s.message));
  });

  it('import requests dropped on the queue are still accepted, validated as a POST', async () => {
    const { t } = await victim();
    await t.service.handleMessage({ source: `${src.host}/team/app:1`, images: ['dropped:1'] }, t.meta());
    const [plan] = t.queue.drain();
    expect(plan).toMatchObject({ v: 1, step: 'plan', mac: expect.any(String) });
    expect(t.logs.join('\n')).toContain(`queued request accepted as job ${plan!.job}`);
  });

  it('a request dropped on the queue nested 30,000 levels deep is rejected JSON_TOO_DEEP, as a reason on the poison queue', async () => {
    const { t } = await victim();
    let deep: unknown = [];
    for (let i = 0; i < 30_000; i++) deep = [deep];
    await t.service.handleMessage({ source: `${src.host}/team/app:1`, images: deep }, t.meta());
    expect(t.queue.poisoned).toEqual([{ v: 1, rejected: { reason: 'JSON_TOO_DEEP', length: 0 } }]);
    expect(t.queue.drain()).toEqual([]);
  });

  it('without MESSAGE_KEY the service queues nothing: 503 MESSAGE_KEY_NOT_SET', async () => {
    [src, dst] = await Promise.all([startFakeRegistry(), startFakeRegistry()]);
    const t = testService({ TARGET_REGISTRY: dst.host, ALLOWED_SOURCES: src.host, MESSAGE_KEY: '' });
    await expect(t.service.submit({ source: `${src.host}/team/app:1` }, 'http')).rejects.toMatchObject({
      status: 503,
      code: 'MESSAGE_KEY_NOT_SET',
    });
    expect(t.queue.sent).toEqual([]);
    expect(t.docs.dump().size).toBe(0);
  });
});
