/**
 * `<queue>-poison`: where the host moves a message after maxDequeueCount deliveries without success, and where
 * the app puts the queued requests it rejects. What lands there is user input (a queued request may hold a
 * password in any spelling or nesting, or not even parse), so nothing keeps a body: the app's own rejection
 * record is `{reason, field?, length}`, a poisoned step fails its job, and anything else is recorded under
 * `poisoned/` in the jobs container as a reason and a length.
 * The idiomatic pattern: https://learn.microsoft.com/azure/azure-functions/functions-bindings-storage-queue-trigger#poison-messages
 */
import type { MessageKeys } from '../config.js';
import { readStep, type StepMessage } from '../store/queue.js';
import { importRequestSchema, type RequestError } from '../request/request.js';
import type { Logger } from '../store/types.js';
import { ENDED, type JobStore, type PoisonRecord } from '../store/store.js';

/** What a poisoned message is known by: where it came from and why it was given up. */
export interface PoisonMeta {
  /** Id of the message in `<queue>-poison` (the trigger's metadata). */
  readonly messageId?: string;
  /** Deliveries the original message had (maxDequeueCount as the host resolves it). */
  readonly maxDequeueCount: number;
  readonly log: Logger;
}

/** The fields of an import request: a rejection record may name one of them, never what the message held. */
const REQUEST_FIELDS = new Set(Object.keys(importRequestSchema.shape));

/** A rejected request as the app itself puts it on the poison queue: a reason, never the body. */
export interface RejectionRecord {
  readonly v: 1;
  readonly rejected: { readonly reason: string; readonly field?: string; readonly length: number };
}

/** The record of a queued request the app refused: its code, the request field it names, its length. */
export function rejectionRecord(raw: unknown, err: RequestError): RejectionRecord {
  // A message the library could not parse as JSON arrives as a string.
  const reason = typeof raw === 'string' ? 'INVALID_JSON' : err.code;
  const field =
    typeof raw !== 'string' && err.target && REQUEST_FIELDS.has(err.target.replace(/\[\d+\]$/, ''))
      ? err.target
      : undefined;
  return { v: 1, rejected: { reason, ...(field ? { field } : {}), length: messageLength(raw) } };
}

/** Our own rejection record, and nothing else that looks like one: a code, a request field, a number. */
function isRejectionRecord(raw: unknown): raw is RejectionRecord {
  const r = raw as { v?: unknown; rejected?: { reason?: unknown; field?: unknown; length?: unknown } } | null;
  if (typeof r !== 'object' || r === null || r.v !== 1 || typeof r.rejected !== 'object' || r.rejected === null)
    return false;
  const { reason, field, length } = r.rejected;
  return (
    typeof reason === 'string' &&
    /^[A-Z][A-Z0-9_]{0,63}$/.test(reason) &&
    Number.isInteger(length) &&
    (field === undefined || (typeof field === 'string' && REQUEST_FIELDS.has(field.replace(/\[\d+\]$/, ''))))
  );
}

/** UTF-8 length of a message as the queue held it (strings as is, anything else as its JSON). */
export function messageLength(raw: unknown): number {
  if (typeof raw === 'string') return Buffer.byteLength(raw, 'utf8');
  try {
    return Buffer.byteLength(JSON.stringify(raw) ?? '', 'utf8');
  } catch {
    return 0;
  }
}

/**
 * A message of `<queue>-poison`. A step message fails its job — with the error an earlier attempt recorded, else
 * STEP_POISONED — so no job stays `running` once its messages are gone (a step killed with its worker, or timed
 * out, on every delivery never ran its own last-attempt handling). Anything else is recorded under `poisoned/`.
 * Idempotent: a job that already ended is left as it is.
 */
export async function handlePoison(store: JobStore, keys: MessageKeys, raw: unknown, meta: PoisonMeta): Promise<void> {
  const step = readStep(keys, raw);
  // Only the app's own step messages fail their job: the poison queue is as writable as the queue itself.
  if (step.kind === 'step') {
    await failPoisoned(store, step.message, meta);
    return;
  }
  const record: PoisonRecord =
    step.kind === 'refused'
      ? { kind: 'rejected', reason: step.code, length: messageLength(raw) }
      : isRejectionRecord(raw)
        ? {
            kind: 'rejected',
            reason: raw.rejected.reason,
            ...(raw.rejected.field ? { field: raw.rejected.field } : {}),
            length: raw.rejected.length,
          }
        : {
            kind: 'message',
            reason: typeof raw === 'string' ? 'INVALID_JSON' : 'MESSAGE_POISONED',
            length: messageLength(raw),
          };
  const path = await store.recordPoison({ ...record, ...(meta.messageId ? { messageId: meta.messageId } : {}) });
  meta.log.warn(
    record.kind === 'rejected'
      ? `rejected queued request [${record.reason}]${record.field ? ` ${record.field}` : ''} (${record.length} bytes) recorded as ${path}`
      : `a queued message that is not a step was given up after ${meta.maxDequeueCount} deliveries [${record.reason}] (${record.length} bytes, body not kept); recorded as ${path}`,
  );
}

async function failPoisoned(store: JobStore, msg: StepMessage, meta: PoisonMeta): Promise<void> {
  const what = `the ${msg.step} step${msg.step === 'blob' ? ` of blob ${msg.blob}` : ''}`;
  const job = await store.get(msg.job);
  if (!job) {
    meta.log.warn(`poisoned ${msg.step} message for unknown job ${msg.job} dropped`);
    return;
  }
  const error = {
    code: 'STEP_POISONED',
    message: `${what} was given up after ${meta.maxDequeueCount} deliveries that all ended without a result (the worker timed out, died or failed each time); start the import again, and see the function logs if it recurs`,
  };
  let failedNow = false;
  const updated = await store.update(job.id, (j) => {
    failedNow = !ENDED.has(j.status);
    const last = j.lastError
      ? { code: j.lastError.code, message: `${error.message}; the last error: ${j.lastError.message}` }
      : undefined;
    return failedNow ? { ...j, status: 'failed', error: j.error ?? last ?? error } : undefined;
  });
  if (failedNow) meta.log.error(`job ${job.id} failed: ${what} was poisoned [${updated.error?.code ?? error.code}]`);
  else meta.log.info(`poisoned ${msg.step} message for job ${job.id}, which is ${updated.status} already`);
}
