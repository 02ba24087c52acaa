/**
 * Step messages as one schema per step (issue 23). The wire format and the tag did not change with it: the golden
 * vectors below were signed by the code before the change (lib/jobs/queue.ts at d4052c9, key = 32 bytes of 7) — a
 * message in flight while the app is updated must still parse and still be the app's.
 */
import { describe, expect, it } from 'vitest';
import { isAuthentic, signStep, stepMessageSchema } from '../../../lib/jobs/queue.js';

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
  it.each(GOLDEN)('%s parses, is the app\'s, and is signed the same again', (json) => {
    const raw = JSON.parse(json) as unknown;
    const parsed = stepMessageSchema.parse(raw);
    expect(parsed).toEqual(raw);
    expect(isAuthentic(keys, parsed)).toBe(true);
    // the same fields give the same signed content: signing again gives the same tag, and the same JSON
    expect(JSON.stringify(signStep(keys, parsed))).toBe(json);
  });
});
