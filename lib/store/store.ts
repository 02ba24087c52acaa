/**
 * Job records in blob storage, one folder per job:
 *   <id>/job.json        status, progress, result — what GET /api/imports/{id} shows (never a secret)
 *   <id>/secret.json     inline source credentials, sealed with AES-256-GCM; deleted when the job ends
 *   <id>/plan.json       the plan (manifests and blobs), written once by the plan step
 *   <id>/blobs.json      the plan's blob list alone: what the fan-out steps read
 *   <id>/blob-<n>.json   the checkpoint of blob n: its state (upload Location, offset) and the step's lease
 *   repeat/<sha256>.json a Repeatability-Request-ID seen: its job and body hash (repeatability.ts)
 *   index/<inverted ms>-<id>  one small entry per job, its status in metadata: lists newest first (listing.ts)
 *   expired/<id>.json    a tombstone: an import deleted by retention (JOB_RETENTION_DAYS, retention.ts)
 *   poisoned/<date>/<time>-<id>.json   what the poison trigger was given that was not a step of a job
 *                        (a rejected queued request, a message given up): a reason and a length, never a body
 * Blob storage rather than a table: plans hold manifest bytes (tens of KB, beyond a table property),
 * and ETags give the same optimistic concurrency for the fan-in. A blob step reads its job and its own
 * checkpoint only, so its cost does not grow with the size of the import.
 */
import { randomUUID } from 'node:crypto';
import type { MessageKeys } from '../config.js';
import { OciImportError } from '../errors.js';
import type { ImportPlan, PlannedBlob } from '../engine/types.js';
import { retry, type RetryPolicy } from '../retry.js';
import type { Doc, Documents } from './documents.js';
import { indexJob, listJobs, type ListPage, type ListQuery } from './listing.js';
import { telemetry } from '../telemetry/index.js';
import { pruneEnded, tombstoneOf, type PruneResult, type Tombstone } from './retention.js';
import type { SealedSecret } from './secrets.js';
import {
  ENDED,
  type BlobTask,
  type JobProgress,
  type JobRecord,
  type PoisonRecord,
  type RepeatRecord,
} from './types.js';

export { ENDED } from './types.js';
export type { BlobTask, JobProgress, JobRecord, JobRequest, JobStatus, PoisonRecord } from './types.js';

export function progressOf(job: JobRecord): JobProgress {
  return {
    manifests: job.manifests,
    blobsTotal: job.blobsTotal,
    blobsDone: job.doneBlobs.length,
    bytesTotal: job.bytesTotal,
    bytesCopied: Object.values(job.blobBytes).reduce((a, b) => a + b, 0),
  };
}

/** Another writer changed the document between our read and our write: read again and retry. */
class EtagConflict extends OciImportError {
  constructor(path: string) {
    super('CONCURRENT_UPDATE', `${path} changed while it was being updated`, { temporary: true, side: 'storage' });
  }
}

/** Many parallel blob steps finishing at once retry their ETag conflicts: 20 attempts, short waits. */
const UPDATE_RETRY: RetryPolicy = { maxAttempts: 20, baseDelayMs: 10, maxDelayMs: 400, maxRetryAfterMs: 0 };

export class JobStore {
  constructor(private readonly docs: Documents) {}

  /** Writes the record and its index entry (at once: an entry without its record is skipped by readers). */
  async create(job: JobRecord, secret?: SealedSecret): Promise<void> {
    if (secret) await this.docs.put(`${job.id}/secret.json`, secret);
    const [etag] = await Promise.all([
      this.docs.put(`${job.id}/job.json`, job, { ifNoneExists: true }),
      indexJob(this.docs, job),
    ]);
    if (!etag) throw new OciImportError('JOB_EXISTS', `job ${job.id} exists already`, { side: 'storage' });
  }

  /** A page of jobs, newest first (see listing.ts); `keys` tag and check its continuation tokens. */
  list(query: ListQuery, keys: MessageKeys): Promise<ListPage> {
    return listJobs(this.docs, (id) => this.get(id), query, keys);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    return (await this.docs.get<JobRecord>(`${id}/job.json`))?.value;
  }

  /**
   * Read-modify-write under the ETag; `change` returns the new record, or undefined for "no change".
   * Returns the record as stored afterwards. A record that ends here loses its sealed credentials.
   */
  async update(id: string, change: (job: JobRecord) => JobRecord | undefined): Promise<JobRecord> {
    const path = `${id}/job.json`;
    const stored = await retry(
      async () => {
        const doc = await this.docs.get<JobRecord>(path);
        if (!doc) throw new OciImportError('JOB_NOT_FOUND', `job ${id} does not exist`, { side: 'storage' });
        const next = change(doc.value);
        if (!next) return { before: doc.value, after: doc.value };
        const stamped = { ...next, updatedAt: new Date().toISOString() };
        if (!(await this.docs.put(path, stamped, { ifMatch: doc.etag }))) throw new EtagConflict(path);
        return { before: doc.value, after: stamped };
      },
      UPDATE_RETRY,
      { retryable: (err) => err instanceof EtagConflict },
    );
    const { before, after } = stored;
    if (!ENDED.has(before.status) && ENDED.has(after.status)) {
      telemetry().count('imports', 1, { outcome: after.status, 'error.code': after.error?.code });
      telemetry().annotate({ 'oci_import.status': after.status, 'oci_import.error_code': after.error?.code });
    }
    await Promise.all([
      before.status !== after.status ? indexJob(this.docs, after) : undefined,
      !ENDED.has(before.status) && ENDED.has(after.status) && after.request.inlineCredentials
        ? this.docs.delete(`${id}/secret.json`)
        : undefined,
    ]);
    return after;
  }

  async secret(id: string): Promise<SealedSecret | undefined> {
    return (await this.docs.get<SealedSecret>(`${id}/secret.json`))?.value;
  }

  async deleteSecret(id: string): Promise<void> {
    await this.docs.delete(`${id}/secret.json`);
  }

  async plan(id: string): Promise<ImportPlan | undefined> {
    return (await this.docs.get<ImportPlan>(`${id}/plan.json`))?.value;
  }

  /** Writes the plan, and its blob list apart (what fan-out steps read). */
  async savePlan(id: string, plan: ImportPlan): Promise<void> {
    await this.docs.put(`${id}/blobs.json`, plan.blobs);
    await this.docs.put(`${id}/plan.json`, plan);
  }

  async blobs(id: string): Promise<readonly PlannedBlob[] | undefined> {
    return (await this.docs.get<PlannedBlob[]>(`${id}/blobs.json`))?.value;
  }

  async blobTask(id: string, index: number): Promise<{ task: BlobTask; etag: string } | undefined> {
    const doc = await this.docs.get<BlobTask>(`${id}/blob-${index}.json`);
    return doc && { task: doc.value, etag: doc.etag };
  }

  async repeatRecord(key: string): Promise<Doc<RepeatRecord> | undefined> {
    return this.docs.get<RepeatRecord>(`repeat/${key}.json`);
  }

  /** Creates (or, given the ETag of an expired one, replaces) a repeatability record; false when another writer was first. */
  async saveRepeatRecord(key: string, record: RepeatRecord, etag: string | undefined): Promise<boolean> {
    return (
      (await this.docs.put(`repeat/${key}.json`, record, etag ? { ifMatch: etag } : { ifNoneExists: true })) !==
      undefined
    );
  }

  async deleteRepeatRecord(key: string): Promise<void> {
    await this.docs.delete(`repeat/${key}.json`);
  }

  /** Keeps a poison record under `poisoned/<date>/`; returns its path. */
  async recordPoison(record: PoisonRecord): Promise<string> {
    const at = new Date().toISOString();
    const path = `poisoned/${at.slice(0, 10)}/${at.replace(/[:.]/g, '-')}-${record.messageId ?? randomUUID()}.json`;
    await this.docs.put(path, { ...record, at });
    return path;
  }

  /** Deletes ended imports older than the retention (retention.ts); never one that has not ended. */
  prune(retentionDays: number, now?: Date): Promise<PruneResult> {
    return pruneEnded(this.docs, { retentionDays, now });
  }

  /** What remains of an import deleted by retention, while its tombstone is kept. */
  tombstone(id: string): Promise<Tombstone | undefined> {
    return tombstoneOf(this.docs, id);
  }

  /** Writes a blob task if it is unchanged since `etag` (or absent, when etag is undefined). */
  async saveBlobTask(id: string, index: number, task: BlobTask, etag: string | undefined): Promise<string | undefined> {
    return this.docs.put(`${id}/blob-${index}.json`, task, etag ? { ifMatch: etag } : { ifNoneExists: true });
  }
}
