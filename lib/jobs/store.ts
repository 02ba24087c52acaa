/**
 * Job records in blob storage, one folder per job:
 *   <id>/job.json        status, progress, result — what GET /api/imports/{id} shows (never a secret)
 *   <id>/secret.json     inline source credentials, sealed with AES-256-GCM
 *   <id>/plan.json       the plan (manifests and blobs), written once by the plan step
 *   <id>/blob-<n>.json   the checkpoint of blob n: upload Location, offset, and the step's lease
 *   poisoned/<date>/<time>-<id>.json   what the poison trigger was given that was not a step of a job
 *                        (a rejected queued request, a message given up): a reason and a length, never a body
 * Blob storage rather than a table: plans hold manifest bytes (tens of KB, beyond a table property),
 * and ETags give the same optimistic concurrency for the fan-in.
 */
import { randomUUID } from 'node:crypto';
import type { ImportPlan, BlobState } from '../engine/types.js';
import type { Documents } from './documents.js';
import type { ValidatedImport } from './request.js';
import type { SealedSecret } from './secrets.js';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface JobProgress {
  readonly manifests: number;
  readonly blobsTotal: number;
  readonly blobsDone: number;
  readonly bytesTotal: number;
  /** Bytes present in the target so far (copied, mounted or already there). */
  readonly bytesCopied: number;
}

/** What a job remembers of its request: everything but secrets (inline credentials are sealed apart). */
export type JobRequest = Omit<ValidatedImport, 'sourceRegistry' | 'inlineCredentials'> & { readonly inlineCredentials: boolean };

export interface JobRecord {
  readonly id: string;
  readonly status: JobStatus;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly request: JobRequest;
  /** `registry/repo:tag` or `registry/repo` names the import writes. */
  readonly targets: readonly string[];
  readonly blobsTotal: number;
  readonly bytesTotal: number;
  readonly manifests: number;
  /** Bytes present per blob index, and which blobs are done: idempotent under redelivery. */
  readonly blobBytes: Record<string, number>;
  readonly doneBlobs: readonly number[];
  readonly digest?: string;
  readonly notes?: readonly string[];
  readonly error?: { readonly code: string; readonly message: string };
}

export interface BlobTask {
  readonly state: BlobState;
  /** A step working on this blob holds the lease until it saves, or until it expires (a dead worker). */
  readonly lease?: { readonly owner: string; readonly until: number };
}

export function progressOf(job: JobRecord): JobProgress {
  return {
    manifests: job.manifests,
    blobsTotal: job.blobsTotal,
    blobsDone: job.doneBlobs.length,
    bytesTotal: job.bytesTotal,
    bytesCopied: Object.values(job.blobBytes).reduce((a, b) => a + b, 0),
  };
}

/** A message from `<queue>-poison` that belongs to no job, as kept for operators: never its content. */
export interface PoisonRecord {
  /** `rejected`: the app refused a queued request; `message`: the host gave up on a message that is not a step. */
  readonly kind: 'rejected' | 'message';
  /** A request error code (`SECRET_IN_QUEUE`, `INVALID_JSON`, …) or `MESSAGE_POISONED`. */
  readonly reason: string;
  /** The request field the error names, when it is one of the request's own fields. */
  readonly field?: string;
  /** UTF-8 bytes of the message. */
  readonly length: number;
  readonly messageId?: string;
}

/** How many times an ETag conflict is retried before giving up (many parallel blob steps finishing at once). */
const MAX_UPDATE_ATTEMPTS = 20;

export class JobStore {
  constructor(private readonly docs: Documents) {}

  async create(job: JobRecord, secret?: SealedSecret): Promise<void> {
    if (secret) await this.docs.put(`${job.id}/secret.json`, secret);
    const etag = await this.docs.put(`${job.id}/job.json`, job, { ifNoneExists: true });
    if (!etag) throw new Error(`job ${job.id} exists already`);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    return (await this.docs.get<JobRecord>(`${id}/job.json`))?.value;
  }

  /**
   * Read-modify-write under the ETag; `change` returns the new record, or undefined for "no change".
   * Returns the record as stored afterwards.
   */
  async update(id: string, change: (job: JobRecord) => JobRecord | undefined): Promise<JobRecord> {
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
      const doc = await this.docs.get<JobRecord>(`${id}/job.json`);
      if (!doc) throw new Error(`job ${id} does not exist`);
      const next = change(doc.value);
      if (!next) return doc.value;
      const stamped = { ...next, updatedAt: new Date().toISOString() };
      if (await this.docs.put(`${id}/job.json`, stamped, { ifMatch: doc.etag })) return stamped;
      await new Promise((r) => setTimeout(r, 10 + Math.random() * 40 * (attempt + 1)));
    }
    throw new Error(`job ${id}: too many concurrent updates`);
  }

  async secret(id: string): Promise<SealedSecret | undefined> {
    return (await this.docs.get<SealedSecret>(`${id}/secret.json`))?.value;
  }

  async plan(id: string): Promise<ImportPlan | undefined> {
    return (await this.docs.get<ImportPlan>(`${id}/plan.json`))?.value;
  }

  async savePlan(id: string, plan: ImportPlan): Promise<void> {
    await this.docs.put(`${id}/plan.json`, plan);
  }

  async blobTask(id: string, index: number): Promise<{ task: BlobTask; etag: string } | undefined> {
    const doc = await this.docs.get<BlobTask>(`${id}/blob-${index}.json`);
    return doc && { task: doc.value, etag: doc.etag };
  }

  /** Keeps a poison record under `poisoned/<date>/`; returns its path. */
  async recordPoison(record: PoisonRecord): Promise<string> {
    const at = new Date().toISOString();
    const path = `poisoned/${at.slice(0, 10)}/${at.replace(/[:.]/g, '-')}-${record.messageId ?? randomUUID()}.json`;
    await this.docs.put(path, { ...record, at });
    return path;
  }

  /** Writes a blob task if it is unchanged since `etag` (or absent, when etag is undefined). */
  async saveBlobTask(id: string, index: number, task: BlobTask, etag: string | undefined): Promise<string | undefined> {
    return this.docs.put(`${id}/blob-${index}.json`, task, etag ? { ifMatch: etag } : { ifNoneExists: true });
  }
}
