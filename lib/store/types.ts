/**
 * The shapes the jobs store keeps — a job record, a blob step's task, a poison record, a repeat record — and the
 * Logger the workflow writes to: what lib/store/store.ts (storage), listing.ts, repeatability.ts (its records),
 * service.ts, steps.ts and poison.ts (the workflow) all name. Types and constants only; it imports no module of
 * lib/jobs that does I/O, so every file of the folder may import it without a cycle.
 */
import type { JobStatus } from '../api/status-view.js';
import type { BlobState, ReferrerView, TargetRef } from '../engine/types.js';

export type { JobProgress, JobStatus } from '../api/status-view.js';

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export { ENDED } from './status.js';

/**
 * An import request that passed every check (lib/request/request.ts `validateImportRequest`): references parsed,
 * policy applied, secrets separated. What a job keeps of it is `JobRequest`.
 */
export interface ValidatedImport {
  readonly source: string;
  readonly sourceRegistry: string;
  readonly target: string;
  readonly images?: string[];
  readonly repository?: string;
  readonly force: boolean;
  readonly platforms?: string[];
  /** Copy the referrers (signatures, SBOMs, attestations), only of these artifact types when given. */
  readonly includeReferrers?: boolean;
  readonly referrerTypes?: string[];
  /** Name of a configured credential for the source. */
  readonly credential?: string;
  /** Inline source credentials (HTTP only); stored encrypted, never queued or returned. An empty username: the password is an Entra ID token. */
  readonly inlineCredentials?: { username: string; password: string };
  /** The source registry was given by this ARM resource ID (canonical form). */
  readonly registryResourceId?: string;
  /** What the import writes, computed once: its refs and their `registry/repository[:tag]` names. */
  readonly refs: readonly TargetRef[];
  readonly targets: readonly string[];
}

/** What a job remembers of its request: everything but secrets (inline credentials are sealed apart). */
export type JobRequest = Omit<ValidatedImport, 'sourceRegistry' | 'inlineCredentials' | 'refs' | 'targets'> & {
  readonly inlineCredentials: boolean;
};

/** Who asked for an import over HTTP with AUTH_MODE=entra: the token's object ID and client app ID, never the token. */
export interface JobCaller {
  /** `oid`: the user's or service principal's object ID. */
  readonly oid?: string;
  /** `appid` (v1.0 tokens) or `azp` (v2.0): the client application. */
  readonly appid?: string;
}

export interface JobRecord {
  readonly id: string;
  readonly status: JobStatus;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** After this instant the job fails with JOB_EXPIRED (MAX_JOB_HOURS). */
  readonly expiresAt: string;
  readonly request: JobRequest;
  /** AUTH_MODE=entra: who created the import (lib/api/entra-auth.ts). */
  readonly caller?: JobCaller;
  /** `registry/repository:tag` or `registry/repository` names the import writes. */
  readonly targets: readonly string[];
  /** Target repositories in copy order (blobs go to the first; the others mount from it). */
  readonly repositories: readonly string[];
  readonly blobsTotal: number;
  readonly bytesTotal: number;
  readonly manifests: number;
  /** Bytes present per blob index, and which blobs are done: idempotent under redelivery. */
  readonly blobBytes: Record<string, number>;
  readonly doneBlobs: readonly number[];
  /** Blob steps enqueued so far (indexes below `next`), by the fan-out's bounded batches. */
  readonly fanout?: { readonly next: number };
  /** Finalize has begun writing manifests and tags: the import can no longer be canceled (cancel.ts). */
  readonly finalizing?: true;
  /** Status `waiting`: the source (or target) asked us to come back at this instant. */
  readonly waitingUntil?: string;
  readonly digest?: string;
  readonly notes?: readonly string[];
  /** With includeReferrers: the referrers the plan copies (a cosign tag's `subject` is the digest it names). */
  readonly referrers?: readonly ReferrerView[];
  readonly error?: { readonly code: string; readonly message: string };
  /** The last temporary failure of a step (retried): what a poisoned step reports, when nothing later said more. */
  readonly lastError?: { readonly code: string; readonly message: string };
}

export interface BlobTask {
  readonly state: BlobState;
  /** A step working on this blob holds the lease until it saves, or until it expires (a dead worker). */
  readonly lease?: { readonly owner: string; readonly until: number };
  /**
   * Leases taken since a step of this blob last ended (successfully or with an error it saved): a worker that
   * dies every time never saves, and its redelivered messages find the lease of the dead step — counting the
   * claims bounds that like maxDequeueCount bounds a message.
   */
  readonly claims?: number;
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

/** A Repeatability-Request-ID seen (`repeat/<sha256>.json`): its job and its body's hash (repeatability.ts). */
export interface RepeatRecord {
  readonly job: string;
  readonly hash: string;
  readonly at: string;
}
