/**
 * Repeatable POSTs (lib/service/repeatability.ts): one import per Repeatability-Request-ID and body, a 409 for
 * the same id with another body, header checks, concurrent copies of one request, a refused request leaving
 * nothing behind, and a job whose first step was never enqueued getting it on a repeat.
 */
import { describe, expect, it } from 'vitest';
import { parseRepeatability, RESEND_AFTER_MS, WINDOW_MS } from '../../../lib/service/repeatability.js';
import { testService } from '../../support/service.js';
import type { StepMessage } from '../../../lib/store/queue.js';

const KEY = Buffer.alloc(32, 3).toString('base64');
const env = { TARGET_REGISTRY: 'r.example', CREDENTIAL_KEY: KEY };
const headers =
  (h: Record<string, string>) =>
  (name: string): string | null =>
    h[name] ?? null;

describe('Repeatability-Request-ID', () => {
  it('the same id and body return the same import (one job, one plan message); another body is 409', async () => {
    const t = testService(env);
    const body = { source: 'docker.io/library/nginx:1.27', images: ['nginx:1.27'], force: true };
    const first = await t.service.submitRepeatable(body, { id: 'req-1' });
    // the same body with its fields in another order is the same request
    const again = await t.service.submitRepeatable(
      { force: true, images: ['nginx:1.27'], source: 'docker.io/library/nginx:1.27' },
      { id: 'req-1' },
    );
    expect(first.repeated).toBe(false);
    expect(again).toMatchObject({ repeated: true, job: { id: first.job.id } });
    expect(t.queue.sent.filter((s) => s.message.step === 'plan')).toHaveLength(1);
    await expect(t.service.submitRepeatable({ ...body, force: false }, { id: 'req-1' })).rejects.toMatchObject({
      status: 409,
      code: 'REPEATABILITY_CONFLICT',
    });
    const other = await t.service.submitRepeatable(body, { id: 'req-2' });
    expect(other.job.id).not.toBe(first.job.id);
  });

  it('copies of one request arriving together make one import', async () => {
    const t = testService(env);
    const body = { source: 'docker.io/library/redis:7' };
    const results = await Promise.all(
      Array.from({ length: 5 }, () => t.service.submitRepeatable(body, { id: 'burst' })),
    );
    expect(new Set(results.map((r) => r.job.id)).size).toBe(1);
    expect(results.filter((r) => !r.repeated)).toHaveLength(1);
    expect(t.queue.sent.filter((s) => s.message.step === 'plan')).toHaveLength(1);
  });

  it('a refused request leaves nothing behind: the same id may carry the corrected body', async () => {
    const t = testService(env);
    await expect(
      t.service.submitRepeatable({ source: 'docker.io/library/nginx:1.27', imgaes: ['x:1'] }, { id: 'fix-me' }),
    ).rejects.toMatchObject({ status: 400, code: 'UNKNOWN_FIELD' });
    const fixed = await t.service.submitRepeatable(
      { source: 'docker.io/library/nginx:1.27', images: ['x:1'] },
      { id: 'fix-me' },
    );
    expect(fixed.repeated).toBe(false);
  });

  it('a body with a password is told apart by a keyed hash, never stored in the clear', async () => {
    const t = testService(env);
    const body = { source: 'docker.io/library/nginx:1.27', username: 'u', password: 'correct horse battery' };
    const first = await t.service.submitRepeatable(body, { id: 'pw' });
    await expect(t.service.submitRepeatable({ ...body, password: 'other' }, { id: 'pw' })).rejects.toMatchObject({
      status: 409,
    });
    expect((await t.service.submitRepeatable(body, { id: 'pw' })).job.id).toBe(first.job.id);
    const stored = [...t.docs.dump()]
      .filter(([k]) => k.startsWith('repeat/'))
      .map(([, v]) => v)
      .join();
    expect(stored).not.toContain('correct horse');
  });

  it('a repeat of a job still queued long after its creation re-sends its first step (its first request may have died before)', async () => {
    const t = testService(env);
    const body = { source: 'docker.io/library/nginx:1.27' };
    const first = await t.service.submitRepeatable(body, { id: 'lost' });
    t.queue.drain();
    await t.service.submitRepeatable(body, { id: 'lost' });
    expect(t.queue.drain()).toEqual([]); // recent: its plan message is surely on its way
    const old = new Date(Date.now() - RESEND_AFTER_MS - 1000).toISOString();
    await t.docs.put(`${first.job.id}/job.json`, { ...first.job, updatedAt: old });
    await t.service.submitRepeatable(body, { id: 'lost' });
    expect(t.queue.drain()).toEqual([{ v: 1, job: first.job.id, step: 'plan', mac: expect.any(String) }]);
  });

  it("with a handOff (the HTTP function's output binding), the first step and a re-sent one go there, not to the queue", async () => {
    const t = testService(env);
    const body = { source: 'docker.io/library/nginx:1.27' };
    const handed: StepMessage[] = [];
    const handOff = (m: StepMessage) => handed.push(m);
    const first = await t.service.submitRepeatable(body, { id: 'bound' }, undefined, handOff);
    expect(handed).toEqual([{ v: 1, job: first.job.id, step: 'plan', mac: expect.any(String) }]);
    const old = new Date(Date.now() - RESEND_AFTER_MS - 1000).toISOString();
    await t.docs.put(`${first.job.id}/job.json`, { ...first.job, updatedAt: old });
    await t.service.submitRepeatable(body, { id: 'bound' }, undefined, handOff);
    expect(handed).toEqual([handed[0], { v: 1, job: first.job.id, step: 'plan', mac: expect.any(String) }]);
    expect(t.queue.sent).toEqual([]);
  });

  it('without CREDENTIAL_KEY a body with a password is refused and nothing is remembered; one without is still repeatable', async () => {
    const t = testService({ TARGET_REGISTRY: 'r.example' });
    const withPassword = { source: 'docker.io/library/nginx:1.27', username: 'u', password: 'correct horse battery' };
    await expect(t.service.submitRepeatable(withPassword, { id: 'pw' })).rejects.toMatchObject({
      status: 400,
      code: 'CREDENTIALS_NOT_ACCEPTED',
    });
    expect([...t.docs.dump().keys()]).toEqual([]);
    const body = { source: 'docker.io/library/nginx:1.27' };
    const first = await t.service.submitRepeatable(body, { id: 'plain' });
    expect(await t.service.submitRepeatable(body, { id: 'plain' })).toMatchObject({
      repeated: true,
      job: { id: first.job.id },
    });
  });

  it('remembers an id for WINDOW_MS (24 h): a record just inside still answers, an older one is forgotten and replaced', async () => {
    const t = testService(env);
    const body = { source: 'docker.io/library/nginx:1.27' };
    const first = await t.service.submitRepeatable(body, { id: 'daily' });
    const [path, text] = [...t.docs.dump()].find(([k]) => k.startsWith('repeat/'))!;
    const record = JSON.parse(text) as { job: string; hash: string; at: string };
    const age = async (ms: number) => t.docs.put(path, { ...record, at: new Date(Date.now() - ms).toISOString() });

    await age(WINDOW_MS - 60_000);
    expect(await t.service.submitRepeatable(body, { id: 'daily' })).toMatchObject({
      repeated: true,
      job: { id: first.job.id },
    });
    await expect(t.service.submitRepeatable({ ...body, force: true }, { id: 'daily' })).rejects.toMatchObject({
      status: 409,
      code: 'REPEATABILITY_CONFLICT',
    });

    await age(WINDOW_MS + 60_000);
    const later = await t.service.submitRepeatable({ ...body, force: true }, { id: 'daily' });
    expect(later.repeated).toBe(false);
    expect(later.job.id).not.toBe(first.job.id);
    // the expired record was replaced by the new request's: the id now names the new import
    expect(await t.service.submitRepeatable({ ...body, force: true }, { id: 'daily' })).toMatchObject({
      repeated: true,
      job: { id: later.job.id },
    });
  });

  it('checks the headers: a bad id, a bad or too old Repeatability-First-Sent', () => {
    const now = Date.parse('2025-06-02T12:00:00Z');
    expect(parseRepeatability(headers({}), now)).toBeUndefined();
    expect(parseRepeatability(headers({ 'repeatability-request-id': 'abc' }), now)).toEqual({ id: 'abc' });
    expect(
      parseRepeatability(
        headers({ 'repeatability-request-id': 'abc', 'repeatability-first-sent': 'Mon, 02 Jun 2025 11:00:00 GMT' }),
        now,
      ),
    ).toEqual({ id: 'abc', firstSent: Date.parse('2025-06-02T11:00:00Z') });
    // the window's edges: exactly WINDOW_MS ago is still inside, a second more is not; an id of 256 characters is taken
    const edge = new Date(now - WINDOW_MS).toUTCString();
    expect(
      parseRepeatability(headers({ 'repeatability-request-id': 'abc', 'repeatability-first-sent': edge }), now),
    ).toEqual({ id: 'abc', firstSent: now - WINDOW_MS });
    expect(() =>
      parseRepeatability(
        headers({
          'repeatability-request-id': 'abc',
          'repeatability-first-sent': new Date(now - WINDOW_MS - 1000).toUTCString(),
        }),
        now,
      ),
    ).toThrow(expect.objectContaining({ status: 412, code: 'REPEATABILITY_EXPIRED' }));
    expect(parseRepeatability(headers({ 'repeatability-request-id': 'x'.repeat(256) }), now)).toEqual({
      id: 'x'.repeat(256),
    });
    const cases: [Record<string, string>, number, string][] = [
      [{ 'repeatability-request-id': 'has space' }, 400, 'INVALID_HEADER'],
      [{ 'repeatability-request-id': 'x'.repeat(257) }, 400, 'INVALID_HEADER'],
      [{ 'repeatability-first-sent': 'Mon, 02 Jun 2025 11:00:00 GMT' }, 400, 'INVALID_HEADER'],
      [
        { 'repeatability-request-id': 'abc', 'repeatability-first-sent': '2025-06-02T11:00:00Z' },
        400,
        'INVALID_HEADER',
      ],
      [
        {
          'repeatability-request-id': 'abc',
          'repeatability-first-sent': new Date(now - WINDOW_MS - 60_000).toUTCString(),
        },
        412,
        'REPEATABILITY_EXPIRED',
      ],
    ];
    for (const [h, status, code] of cases)
      expect(() => parseRepeatability(headers(h), now)).toThrow(expect.objectContaining({ status, code }));
  });
});
