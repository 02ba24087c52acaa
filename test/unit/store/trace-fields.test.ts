/**
 * The trace fields of a step message (issue 25): `tp` (W3C traceparent) and `at` (when it became visible) are inside
 * the message's HMAC — a changed or added traceparent makes the message not the app's — and a message without them is
 * signed exactly as before they existed (messages already queued when the app is updated stay the app's). Without
 * telemetry the service's queue sends no trace fields at all.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../lib/config.js';
import {
  isAuthentic,
  MemoryJobQueue,
  SigningQueue,
  signStep,
  stepMessageSchema,
  type StepMessage,
} from '../../../lib/store/queue.js';
import { TEST_MESSAGE_KEY } from '../../support/service.js';

const keys = loadConfig({ MESSAGE_KEY: TEST_MESSAGE_KEY }).messageKeys!;
const TP = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const base: StepMessage = {
  v: 1,
  job: '0f8fad5b-d9cb-469f-a165-70867728950e',
  step: 'blob',
  blob: 2,
  digest: `sha256:${'a'.repeat(64)}`,
  size: 10,
};

describe('step message trace fields', () => {
  it('a message without trace fields carries the tag the app made before they existed', () => {
    // the tag as lib/store/mac.ts made it for the seven fields: purpose key, then the canonical content
    const purpose = createHmac('sha256', keys.current).update('oci-import queue-step v1').digest();
    const old = createHmac('sha256', purpose)
      .update(JSON.stringify([1, base.job, 'blob', 2, null, base.digest, 10]), 'utf8')
      .digest('base64url');
    expect(signStep(keys, base).mac).toBe(old);
  });

  it("the traceparent and the time are signed: changing, adding or removing one makes the message not the app's", () => {
    const signed = signStep(keys, { ...base, tp: TP, at: 1_700_000_000_000 });
    expect(stepMessageSchema.parse(signed)).toEqual(signed);
    expect(isAuthentic(keys, signed)).toBe(true);
    expect(isAuthentic(keys, { ...signed, tp: TP.replace('b7ad', 'ffff') })).toBe(false);
    expect(isAuthentic(keys, { ...signed, at: 1 })).toBe(false);
    const { tp: _tp, at: _at, ...without } = signed;
    expect(isAuthentic(keys, without)).toBe(false);
    expect(isAuthentic(keys, { ...signStep(keys, base), tp: TP })).toBe(false);
  });

  it('a traceparent not in the W3C form is refused by the schema', () => {
    expect(stepMessageSchema.safeParse({ ...base, tp: 'not-a-traceparent' }).success).toBe(false);
    expect(stepMessageSchema.safeParse({ ...base, tp: `${TP}-extra` }).success).toBe(false);
  });

  it("without telemetry the service's queue sends no trace fields, and drops ones a message carried", async () => {
    const inner = new MemoryJobQueue();
    const queue = new SigningQueue(inner, () => keys);
    await queue.send({ ...base, tp: TP, at: 5 });
    const [sent] = inner.drain();
    expect(sent!.tp).toBeUndefined();
    expect(sent!.at).toBeUndefined();
    expect(isAuthentic(keys, sent!)).toBe(true);
  });
});
