/**
 * Repeatable POSTs (OASIS Repeatable Requests 1.0, as the Azure REST API guidelines ask of POST:
 * https://github.com/microsoft/api-guidelines/blob/vNext/azure/Guidelines.md#repeatability-of-requests).
 *
 * A client sends `Repeatability-Request-ID` (its own unique id for the request) and, optionally,
 * `Repeatability-First-Sent` (when it first sent it, an IMF-fixdate). Within WINDOW_MS of the first request:
 * - the same id with the same body returns the same import (its current status), instead of a second one;
 * - the same id with another body is refused (409 REPEATABILITY_CONFLICT);
 * - a `Repeatability-First-Sent` older than the window is refused (412 REPEATABILITY_EXPIRED), as Azure
 *   Communication Services answers it (learn.microsoft.com/rest/api/communication/repeatable-requests).
 *
 * The record `repeat/<sha256 of the id>.json` `{job, hash, at}` is written (create-if-absent) before the job,
 * with the job's id chosen up front, so two copies of a request racing each other create one job: the job
 * record is itself create-if-absent, and the loser returns the winner's job. `hash` is an HMAC-SHA256 of the
 * body's canonical JSON — keyed with CREDENTIAL_KEY whenever the body carries a password (a plain hash of a
 * body with a weak password could be guessed offline; such a body is refused anyway without that key).
 */
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { errorCode } from '../errors.js';
import type { JobQueue } from '../store/queue.js';
import { RequestError } from '../request/request.js';
import type { JobRecord, JobStore } from '../store/store.js';

/** How long a Repeatability-Request-ID is remembered (the guidelines ask for at least 5 minutes). */
export const WINDOW_MS = 24 * 3_600_000;
/** A repeated request whose job is still queued after this long re-sends its first step: the first
 * request's process may have died between creating the job and enqueueing it (the plan step is idempotent). */
export const RESEND_AFTER_MS = 60_000;

export interface RepeatabilityHeaders {
  readonly id: string;
  /** Epoch ms of Repeatability-First-Sent, when given. */
  readonly firstSent?: number;
}

export type { RepeatRecord } from '../store/types.js';

const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** The repeatability headers of a request, checked; undefined when it has none. */
export function parseRepeatability(
  get: (name: string) => string | null,
  now = Date.now(),
): RepeatabilityHeaders | undefined {
  const id = get('repeatability-request-id');
  const sent = get('repeatability-first-sent');
  if (id === null) {
    if (sent !== null)
      throw new RequestError(
        400,
        'INVALID_HEADER',
        'Repeatability-First-Sent needs Repeatability-Request-ID',
        'Repeatability-Request-ID',
      );
    return undefined;
  }
  if (!/^[\x21-\x7e]{1,256}$/.test(id)) {
    throw new RequestError(
      400,
      'INVALID_HEADER',
      'Repeatability-Request-ID must be 1 to 256 visible ASCII characters (a UUID is a good choice)',
      'Repeatability-Request-ID',
    );
  }
  if (sent === null) return { id };
  const firstSent = Date.parse(sent);
  if (!IMF_FIXDATE.test(sent.trim()) || Number.isNaN(firstSent)) {
    throw new RequestError(
      400,
      'INVALID_HEADER',
      'Repeatability-First-Sent must be an HTTP date such as "Tue, 15 Nov 1994 08:12:31 GMT"',
      'Repeatability-First-Sent',
    );
  }
  if (now - firstSent > WINDOW_MS) {
    throw new RequestError(
      412,
      'REPEATABILITY_EXPIRED',
      `Repeatability-First-Sent is more than ${WINDOW_MS / 3_600_000} hours ago: this service no longer knows whether that request ran; check the imports (GET /api/imports) before sending it again without the header`,
      'Repeatability-First-Sent',
    );
  }
  return { id, firstSent };
}

/** JSON with object keys sorted: the same body, however its fields are ordered, hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export interface RepeatDeps {
  readonly store: JobStore;
  readonly queue: JobQueue;
  /** Validates and creates the job with this id (ImportService.submit). */
  readonly submit: (body: unknown, id: string) => Promise<JobRecord>;
  /** CREDENTIAL_KEY, read only for a body with a password. */
  readonly credentialKey: () => Buffer | undefined;
}

export interface RepeatResult {
  readonly job: JobRecord;
  /** An earlier request with this id made the job. */
  readonly repeated: boolean;
}

export async function submitRepeatable(
  deps: RepeatDeps,
  body: unknown,
  headers: RepeatabilityHeaders,
): Promise<RepeatResult> {
  const hasPassword = typeof body === 'object' && body !== null && 'password' in body;
  const key = hasPassword ? deps.credentialKey() : undefined;
  // A password without CREDENTIAL_KEY is refused by validation: nothing to remember.
  if (hasPassword && !key) return { job: await deps.submit(body, randomUUID()), repeated: false };
  const hash = createHmac('sha256', key ?? 'oci-import repeatability')
    .update(canonical(body))
    .digest('base64url');
  const path = createHash('sha256').update(headers.id).digest('hex');
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = await deps.store.repeatRecord(path);
    if (existing && Date.now() - Date.parse(existing.value.at) < WINDOW_MS) {
      if (existing.value.hash !== hash) {
        throw new RequestError(
          409,
          'REPEATABILITY_CONFLICT',
          `Repeatability-Request-ID ${JSON.stringify(headers.id.slice(0, 64))} was sent before with another body (import ${existing.value.job}); use a new id for a new request`,
          'Repeatability-Request-ID',
        );
      }
      const job = await deps.store.get(existing.value.job);
      if (job) return { job: await resendIfLost(deps, job), repeated: true };
      return create(deps, body, existing.value.job, path); // the first request's record, its job never made
    }
    const id = randomUUID();
    if (await deps.store.saveRepeatRecord(path, { job: id, hash, at: new Date().toISOString() }, existing?.etag))
      return create(deps, body, id, path);
  }
  throw new RequestError(
    503,
    'REPEATABILITY_BUSY',
    'requests with this Repeatability-Request-ID are arriving at the same time; send it again',
    'Repeatability-Request-ID',
  );
}

async function create(deps: RepeatDeps, body: unknown, id: string, path: string): Promise<RepeatResult> {
  try {
    return { job: await deps.submit(body, id), repeated: false };
  } catch (err) {
    if (errorCode(err) === 'JOB_EXISTS') {
      const job = await deps.store.get(id);
      if (job) return { job, repeated: true };
    }
    // A refused request leaves nothing behind: the same id may carry a corrected body.
    if (err instanceof RequestError && !err.temporary) await deps.store.deleteRepeatRecord(path).catch(() => undefined);
    throw err;
  }
}

async function resendIfLost(deps: RepeatDeps, job: JobRecord): Promise<JobRecord> {
  if (job.status === 'queued' && !job.blobsTotal && Date.now() - Date.parse(job.updatedAt) > RESEND_AFTER_MS) {
    await deps.queue.send({ v: 1, job: job.id, step: 'plan' });
  }
  return job;
}
