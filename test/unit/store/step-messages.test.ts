/**
 * Step messages as one schema per step (issue 23). The wire format and the tag did not change with it: the golden
 * vectors below were signed by the code before the change (lib/jobs/queue.ts at d4052c9, now lib/store/queue.ts; key = 32 bytes of 7) — a
 * message in flight while the app is updated must still parse and still be the app's.
 */
import { describe, expect, it } from 'vitest';
import {
  isAuthentic,
  MemoryJobQueue,
  readStep,
  signStep,
  stepMessageSchema,
  type StepMessage,
} from '../../../lib/store/queue.js';
import { testService } from '../../support/service.js';

const keys = { current: Buffer.alloc(32, 7) };

/** Signed by the code before the change (one of each step, and two with trace fields). */
const GOLDEN = [
  '{"v":1,"job":"3b241101-e2bb-4255-8caf-4136c566a962","step":"plan","mac":"a0IZY4u4AYc4ZDscsc59d6dh9SBicxbXtbVnrvhi2EY"}',
  '{"v":1,"job":"3b241101-e2bb-4255-8caf-4136c566a962","step":"fanout","from":64,"mac":"pEYVpbz1HOh2Qm2BzizgwZtEDjhyNDf6oP8XZLzjKyE"}',
  '{"v":1,"job":"3b241101-e2bb-4255-8caf-4136c566a962","step":"blob","blob":3,"digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":1234,"mac":"M_f4wEjBPdouDucaR3dBbsqdouB7C56hJsnuT5Vt1tc"}',
  '{"v":1,"job":"3b241101-e2bb-4255-8caf-4136c566a962","step":"finalize","mac":"faVvWSGAULcQ3LGL6bIiUEWbqYnG5N3W-ohsCCTztTo"}',
  '{"v":1,"job":"3b241101-e2bb-4255-8caf-4136c566a962","step":"blob","blob":0,"digest":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","size":0,"tp":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","at":1700000000000,"mac":"SKJ4hxe-Y7dHPmAXdgv33jeav9Zkfdj2qdJhLjxE0TM"}',
  '{"v":1,"job":"3b241101-e2bb-4255-8caf-4136c566a962","step":"finalize","tp":"00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01","at":1700000005000,"mac":"Ai0_sdNzJshj9pJOh9Exyinl2Nq0Ol-GSJlfuZTN_NU"}',
];

describe('step messages signed before the schema per step', () => {
  it.each(GOLDEN)("%s parses, is the app's, and is signed the same again", (json) => {
    const raw = JSON.parse(json) as unknown;
    const parsed = stepMessageSchema.parse(raw);
    expect(parsed).toEqual(raw);
    expect(isAuthentic(keys, parsed)).toBe(true);
    // the same fields give the same signed content: signing again gives the same tag, and the same JSON
    expect(JSON.stringify(signStep(keys, parsed))).toBe(json);
  });
});

const JOB = '3b241101-e2bb-4255-8caf-4136c566a962';
const DIGEST = `sha256:${'b'.repeat(64)}`;
/** One well-formed message of each step, and the fields each must have. */
const STEPS = {
  plan: { message: { v: 1, job: JOB, step: 'plan' }, needs: [] },
  fanout: { message: { v: 1, job: JOB, step: 'fanout', from: 64 }, needs: ['from'] },
  blob: {
    message: { v: 1, job: JOB, step: 'blob', blob: 3, digest: DIGEST, size: 1234 },
    needs: ['blob', 'digest', 'size'],
  },
  finalize: { message: { v: 1, job: JOB, step: 'finalize' }, needs: [] },
} as const;
/** A value of each step field a message could carry. */
const FIELDS = { blob: 0, from: 0, digest: DIGEST, size: 1 } as const;

describe('each step carries exactly its own fields', () => {
  for (const [step, { message, needs }] of Object.entries(STEPS)) {
    it(`${step}: parses as itself, refuses a field of another step and the lack of one of its own`, () => {
      expect(stepMessageSchema.parse(message)).toEqual(message);
      for (const [field, value] of Object.entries(FIELDS)) {
        if ((needs as readonly string[]).includes(field)) continue;
        expect(stepMessageSchema.safeParse({ ...message, [field]: value }).success, `${step} with ${field}`).toBe(
          false,
        );
      }
      for (const field of needs) {
        const { [field]: _gone, ...without } = message as Record<string, unknown>;
        expect(stepMessageSchema.safeParse(without).success, `${step} without ${field}`).toBe(false);
        expect(stepMessageSchema.safeParse({ ...message, [field]: null }).success, `${step} with ${field} null`).toBe(
          false,
        );
      }
    });
  }

  it('refuses an unknown step, and a step name in another case', () => {
    for (const step of ['copy', 'Plan', '', undefined]) {
      expect(stepMessageSchema.safeParse({ v: 1, job: JOB, step }).success, String(step)).toBe(false);
    }
    expect(stepMessageSchema.safeParse({ v: 2, job: JOB, step: 'plan' }).success).toBe(false);
  });

  it("where messages are built, TypeScript wants each step's fields (checked by npm run typecheck)", async () => {
    const queue = new MemoryJobQueue();
    // @ts-expect-error a blob step without its digest and size does not compile
    await queue.send({ v: 1, job: JOB, step: 'blob', blob: 0 });
    // @ts-expect-error nor a plan step with a blob index
    await queue.send({ v: 1, job: JOB, step: 'plan', blob: 0 });
    // @ts-expect-error nor a fan-out without where it starts
    await queue.send({ v: 1, job: JOB, step: 'fanout' });
    const ok: StepMessage[] = Object.values(STEPS).map((s) => s.message);
    expect(ok).toHaveLength(4);
  });
});

describe('reading a queue message as a step', () => {
  it("a well-formed step with the app's tag is a step; without it, refused as not authentic", () => {
    for (const { message } of Object.values(STEPS)) {
      expect(readStep(keys, signStep(keys, message))).toEqual({ kind: 'step', message: signStep(keys, message) });
      expect(readStep(keys, message)).toMatchObject({ kind: 'refused', code: 'STEP_NOT_AUTHENTIC' });
    }
  });

  it('shaped like a step but with fields its step does not have: not authentic without the tag (as before), and refused even with it', () => {
    const malformed = [
      { ...STEPS.plan.message, blob: 0 },
      { ...STEPS.finalize.message, digest: DIGEST },
      { v: 1, job: JOB, step: 'blob', blob: 1 },
      { v: 1, job: JOB, step: 'fanout' },
    ];
    for (const m of malformed) {
      expect(readStep(keys, m), JSON.stringify(m)).toMatchObject({ kind: 'refused', code: 'STEP_NOT_AUTHENTIC' });
      // a leaked key signs anything: such a message is still none the app writes
      const leaked = signStep(keys, m as unknown as StepMessage);
      expect(isAuthentic(keys, leaked)).toBe(true);
      const read = readStep(keys, leaked);
      expect(read, JSON.stringify(m)).toMatchObject({ kind: 'refused', code: 'STEP_NOT_IN_PLAN' });
      expect(read.kind === 'refused' && read.why).toMatch(new RegExp(`^a ${m.step} step has no such message: `));
    }
  });

  it('anything not shaped like a step is no step (an import request, an unknown step, an unknown field)', () => {
    for (const raw of [
      { source: 'registry.example/app:1' },
      { v: 1, job: JOB, step: 'copy' },
      { ...STEPS.plan.message, extra: 1 },
      'text',
      null,
    ]) {
      expect(readStep(keys, raw), JSON.stringify(raw)).toEqual({ kind: 'other' });
    }
  });
});

describe('malformed step messages on the queue and the poison queue (memory storage)', () => {
  const setup = async () => {
    const t = testService({ TARGET_REGISTRY: 'target.example', ALLOWED_SOURCES: '*', STEP_BUDGET_SECONDS: '60' });
    const job = await t.service.submit({ source: 'registry.example/team/app:1', images: ['app:1'] }, 'http');
    t.queue.drain();
    const snapshot = () =>
      [...t.docs.dump()]
        .filter(([p]) => p.startsWith(`${job.id}/`))
        .sort()
        .join('\n');
    return { t, job, snapshot };
  };

  it('a signed plan step carrying a blob index is refused unread: nothing sent, the job as it was', async () => {
    const { t, job, snapshot } = await setup();
    const before = snapshot();
    const forged = t.sign({ v: 1, job: job.id, step: 'plan', blob: 0 } as unknown as StepMessage);
    await t.service.handleMessage(forged, t.meta());
    expect(t.queue.drain()).toEqual([]);
    expect(t.queue.poisoned).toEqual([
      { v: 1, rejected: { reason: 'STEP_NOT_IN_PLAN', length: JSON.stringify(forged).length } },
    ]);
    expect(snapshot()).toBe(before);
    expect(t.logs.join('\n')).toMatch(
      /a plan message naming job .* was refused \[STEP_NOT_IN_PLAN\]: a plan step has no such message: blob/,
    );
  });

  it('on the poison queue, a malformed step fails no job: recorded as a reason and a length', async () => {
    const { t, job, snapshot } = await setup();
    const before = snapshot();
    const meta = { maxDequeueCount: 5, log: t.meta().log };
    const unsigned = { v: 1, job: job.id, step: 'blob', blob: 0 };
    await t.service.handlePoison(unsigned, { ...meta, messageId: 'p-1' });
    await t.service.handlePoison(t.sign(unsigned as unknown as StepMessage), { ...meta, messageId: 'p-2' });
    expect(snapshot()).toBe(before);
    const kept = [...t.docs.dump()]
      .filter(([p]) => p.startsWith('poisoned/'))
      .map(([, v]) => JSON.parse(v) as Record<string, unknown>);
    expect(kept).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'rejected', reason: 'STEP_NOT_AUTHENTIC', messageId: 'p-1' }),
        expect.objectContaining({ kind: 'rejected', reason: 'STEP_NOT_IN_PLAN', messageId: 'p-2' }),
      ]),
    );
    expect(kept).toHaveLength(2);
  });
});
