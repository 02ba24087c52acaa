/**
 * What the app does with what Azure does to it (memory storage, no registry needed):
 * - the poison trigger fails the job of a poisoned step (STEP_POISONED, or the error an attempt recorded),
 *   keeps rejection records and other poisoned messages as a reason and a length only;
 * - a queued request that is rejected goes to the poison queue as a reason code and a length, whatever
 *   spelling, nesting or parse failure carried its password;
 * - a job whose updatedAt stops moving past a step and the queue lease is reported as stalled.
 */
import { InvocationContext } from '@azure/functions';
import { afterEach, describe, expect, it } from 'vitest';
import { importPoison } from '../../../functions/import-poison.js';
import { setImportService } from '../../../lib/service/runtime.js';
import type { PoisonMeta } from '../../../lib/service/poison.js';
import type { JobRecord } from '../../../lib/store/store.js';
import { testService, type TestService } from '../../support/service.js';

const SECRET = 'pw-Do-Not-Keep-7c1f';
const KEY = Buffer.alloc(32, 3).toString('base64');

function setup(): TestService {
  return testService({
    TARGET_REGISTRY: 'target.example',
    ALLOWED_SOURCES: '*',
    CREDENTIAL_KEY: KEY,
    STEP_BUDGET_SECONDS: '60',
  });
}

function poisonMeta(t: TestService, messageId?: string): PoisonMeta {
  const log = {
    info: (m: string) => t.logs.push(m),
    warn: (m: string) => t.logs.push(m),
    error: (m: string) => t.logs.push(m),
  };
  return { maxDequeueCount: 5, log, ...(messageId ? { messageId } : {}) };
}

/** Every stored document, the messages sent to the poison queue and the logs, as one text. */
function everything(t: TestService): string {
  return JSON.stringify([[...t.docs.dump()], t.queue.poisoned, t.queue.sent, t.logs]);
}

async function newJob(t: TestService): Promise<JobRecord> {
  const job = await t.service.submit({ source: 'registry.example/team/app:1', images: ['app:1'] }, 'http');
  t.queue.drain();
  return job;
}

describe('queued requests that are rejected: a reason and a length, never the body', () => {
  const bodies: [string, unknown, string][] = [
    ['not JSON at all (arrives as a string)', `{"source": "x", "password": "${SECRET}"`, 'INVALID_JSON'],
    ['a JSON string', `password=${SECRET}`, 'INVALID_JSON'],
    ['Password spelt with a capital', { source: 'registry.example/app:1', Password: SECRET }, 'UNKNOWN_FIELD'],
    [
      'a password nested in an unknown field',
      { source: 'registry.example/app:1', auth: { password: SECRET } },
      'UNKNOWN_FIELD',
    ],
    [
      'a password with a username, by queue',
      { source: 'registry.example/app:1', username: 'u', password: SECRET },
      'SECRET_IN_QUEUE',
    ],
    [
      'a password inside the source reference',
      { source: `user:${SECRET}@registry.example/app:1` },
      'INVALID_REFERENCE',
    ],
    ['an array', [{ password: SECRET }], 'INVALID_BODY'],
  ];

  it.each(bodies)('%s', async (_name, body, reason) => {
    const t = setup();
    await t.service.handleMessage(body, t.meta());
    expect(t.queue.sent).toEqual([]);
    expect(t.queue.poisoned).toHaveLength(1);
    const record = t.queue.poisoned[0] as { v: number; rejected: { reason: string; field?: string; length: number } };
    expect(record.v).toBe(1);
    expect(record.rejected.reason).toBe(reason);
    expect(record.rejected.length).toBe(Buffer.byteLength(typeof body === 'string' ? body : JSON.stringify(body)));
    expect(Object.keys(record.rejected).every((k) => ['reason', 'field', 'length'].includes(k))).toBe(true);
    if (record.rejected.field)
      expect(['source', 'password', 'username', 'images']).toContain(record.rejected.field.replace(/\[.*$/, ''));
    expect(everything(t)).not.toContain(SECRET);

    // …and through the poison trigger into storage, still without it.
    await t.service.handlePoison(record, poisonMeta(t, 'm-1'));
    const stored = [...t.docs.dump()].filter(([path]) => path.startsWith('poisoned/'));
    expect(stored).toHaveLength(1);
    expect(JSON.parse(stored[0]![1])).toMatchObject({
      kind: 'rejected',
      reason,
      length: record.rejected.length,
      messageId: 'm-1',
    });
    expect(everything(t)).not.toContain(SECRET);
  });

  it("names the field only when it is one of the request's own (an unknown key may be anything)", async () => {
    const t = setup();
    await t.service.handleMessage({ source: 'registry.example/app:1', [SECRET]: true }, t.meta());
    expect(t.queue.poisoned).toEqual([
      { v: 1, rejected: { reason: 'UNKNOWN_FIELD', length: expect.any(Number) as number } },
    ]);
    await t.service.handleMessage({ source: 'Not/A/Valid:Ref' }, t.meta());
    expect(t.queue.poisoned[1]).toMatchObject({ rejected: { reason: 'INVALID_REFERENCE', field: 'source' } });
  });
});

describe('poison trigger', () => {
  afterEach(() => setImportService(undefined));

  it('fails the job of a poisoned step with STEP_POISONED, once', async () => {
    const t = setup();
    const job = await newJob(t);
    await t.service.handlePoison(
      t.sign({ v: 1, job: job.id, step: 'blob', blob: 3, digest: `sha256:${'3'.repeat(64)}`, size: 3 }),
      poisonMeta(t),
    );
    const status = await t.service.status(job.id);
    expect(status).toMatchObject({ status: 'failed', error: { code: 'STEP_POISONED' } });
    expect(status!.error!.message).toMatch(/^the blob step of blob 3 was given up after 5 deliveries/);
    const before = (await t.store.get(job.id))!.updatedAt;
    await t.service.handlePoison(
      t.sign({ v: 1, job: job.id, step: 'blob', blob: 3, digest: `sha256:${'3'.repeat(64)}`, size: 3 }),
      poisonMeta(t),
    ); // redelivered
    expect((await t.store.get(job.id))!.updatedAt).toBe(before);
  });

  it('keeps the error an earlier attempt recorded, and leaves a job that already ended as it is', async () => {
    const t = setup();
    const recorded = await newJob(t);
    await t.store.update(recorded.id, (j) => ({
      ...j,
      status: 'running',
      error: { code: 'RATE_LIMITED', message: 'the registry said slow down' },
    }));
    await t.service.handlePoison(t.sign({ v: 1, job: recorded.id, step: 'plan' }), poisonMeta(t));
    expect(await t.service.status(recorded.id)).toMatchObject({ status: 'failed', error: { code: 'RATE_LIMITED' } });

    const done = await newJob(t);
    await t.store.update(done.id, (j) => ({ ...j, status: 'succeeded', digest: 'sha256:0' }));
    await t.service.handlePoison(t.sign({ v: 1, job: done.id, step: 'finalize' }), poisonMeta(t));
    expect(await t.service.status(done.id)).toMatchObject({ status: 'succeeded' });
    expect((await t.service.status(done.id))!.error).toBeUndefined();
  });

  it('records a poisoned message that is no step as a reason and a length only', async () => {
    const t = setup();
    await t.service.handlePoison({ source: 'registry.example/app:1', password: SECRET }, poisonMeta(t, 'm-2'));
    await t.service.handlePoison(`garbage ${SECRET}`, poisonMeta(t, 'm-3'));
    await t.service.handlePoison(
      t.sign({ v: 1, job: '00000000-0000-4000-8000-000000000000', step: 'plan' }),
      poisonMeta(t),
    ); // unknown job
    const stored = [...t.docs.dump()]
      .filter(([path]) => path.startsWith('poisoned/'))
      .map(([path, text]) => ({ path, ...(JSON.parse(text) as object) }));
    expect(stored).toHaveLength(2);
    expect(stored).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'message', reason: 'MESSAGE_POISONED', messageId: 'm-2' }),
        expect.objectContaining({
          kind: 'message',
          reason: 'INVALID_JSON',
          length: Buffer.byteLength(`garbage ${SECRET}`),
          messageId: 'm-3',
        }),
      ]),
    );
    for (const s of stored) expect(s.path).toMatch(/^poisoned\/\d{4}-\d{2}-\d{2}\/[0-9TZ-]+-m-[23]\.json$/);
    expect(everything(t)).not.toContain(SECRET);
  });

  it('takes as a rejection record only a code, a request field and a number: a look-alike is a message like any other', async () => {
    const t = setup();
    await t.service.handlePoison({ v: 1, rejected: { reason: `leak ${SECRET}`, length: 1 } }, poisonMeta(t, 'f-1'));
    await t.service.handlePoison(
      { v: 1, rejected: { reason: 'UNKNOWN_FIELD', field: SECRET, length: 1 } },
      poisonMeta(t, 'f-2'),
    );
    const stored = [...t.docs.dump()]
      .filter(([path]) => path.startsWith('poisoned/'))
      .map(([, text]) => JSON.parse(text) as { kind: string; reason: string });
    expect(stored.map((r) => [r.kind, r.reason])).toEqual([
      ['message', 'MESSAGE_POISONED'],
      ['message', 'MESSAGE_POISONED'],
    ]);
    expect(everything(t)).not.toContain(SECRET);
  });

  it('checks every part of a rejection record: version, object, code shape and length, integer length, field of the request', async () => {
    const t = setup();
    const code64 = `A${'B'.repeat(63)}`;
    const lookAlikes: unknown[] = [
      { v: 2, rejected: { reason: 'INVALID_BODY', length: 1 } },
      { v: 1, rejected: null },
      { v: 1, rejected: 'INVALID_BODY' },
      { v: 1, rejected: { reason: 'invalid_body', length: 1 } },
      { v: 1, rejected: { reason: 'INVALID_BODY trailing', length: 1 } },
      { v: 1, rejected: { reason: 'xINVALID_BODY', length: 1 } },
      { v: 1, rejected: { reason: `${code64}C`, length: 1 } },
      { v: 1, rejected: { reason: 42, length: 1 } },
      { v: 1, rejected: { reason: 'INVALID_BODY', length: 1.5 } },
      { v: 1, rejected: { reason: 'INVALID_BODY', length: '1' } },
      { v: 1, rejected: { reason: 'INVALID_BODY', length: 1, field: 'images[x]' } },
      { v: 1, rejected: { reason: 'INVALID_BODY', length: 1, field: 'images[1]x' } },
      { v: 1, rejected: { reason: 'INVALID_BODY', length: 1, field: 7 } },
      null,
    ];
    for (const [i, raw] of lookAlikes.entries()) await t.service.handlePoison(raw, poisonMeta(t, `l-${i}`));
    const genuine = [
      { v: 1, rejected: { reason: 'INVALID_BODY', field: 'images[12]', length: 3 } },
      { v: 1, rejected: { reason: code64, length: 0 } },
    ];
    for (const [i, raw] of genuine.entries()) await t.service.handlePoison(raw, poisonMeta(t, `g-${i}`));
    const stored = new Map(
      [...t.docs.dump()]
        .filter(([path]) => path.startsWith('poisoned/'))
        .map(([, text]) => JSON.parse(text) as { messageId: string; kind: string; reason: string; field?: string })
        .map((r) => [r.messageId, r]),
    );
    for (const i of lookAlikes.keys())
      expect(stored.get(`l-${i}`)).toMatchObject({ kind: 'message', reason: 'MESSAGE_POISONED' });
    expect(stored.get('g-0')).toMatchObject({
      kind: 'rejected',
      reason: 'INVALID_BODY',
      field: 'images[12]',
      length: 3,
    });
    expect(stored.get('g-1')).toMatchObject({ kind: 'rejected', reason: code64, length: 0 });
  });

  it('is the importPoison function, with the message id from the trigger metadata', async () => {
    const t = setup();
    setImportService(t.service);
    const job = await newJob(t);
    const context = new InvocationContext({
      functionName: 'importPoison',
      triggerMetadata: { id: 'poison-msg-9', dequeueCount: 1 },
      logHandler: () => undefined,
    });
    await importPoison(t.sign({ v: 1, job: job.id, step: 'finalize' }), context);
    expect(await t.service.status(job.id)).toMatchObject({ status: 'failed', error: { code: 'STEP_POISONED' } });
    await importPoison({ v: 1, rejected: { reason: 'SECRET_IN_QUEUE', field: 'password', length: 80 } }, context);
    expect([...t.docs.dump().keys()].some((k) => k.endsWith('-poison-msg-9.json'))).toBe(true);
  });
});

describe('stalled jobs', () => {
  it('a queued or running job nobody updated for longer than a step plus the queue lease is reported as stalled', async () => {
    const t = setup(); // STEP_BUDGET_SECONDS 60, lease margin 30 s, queue lease 600 s: 690 s
    const job = await newJob(t);
    expect((await t.service.status(job.id))!.stalled).toBeUndefined();
    const ago = (s: number) => new Date(Date.now() - s * 1000).toISOString();
    const setUpdated = async (status: JobRecord['status'], seconds: number) => {
      const doc = (await t.docs.get<JobRecord>(`${job.id}/job.json`))!;
      await t.docs.put(`${job.id}/job.json`, { ...doc.value, status, updatedAt: ago(seconds) });
    };
    await setUpdated('running', 680);
    expect((await t.service.status(job.id))!.stalled).toBeUndefined();
    await setUpdated('running', 700);
    expect((await t.service.status(job.id))!.stalled).toBe(true);
    await setUpdated('queued', 700);
    expect((await t.service.status(job.id))!.stalled).toBe(true);
    await setUpdated('failed', 7000);
    expect((await t.service.status(job.id))!.stalled).toBeUndefined();
  });
});
