/**
 * The import as data. A plan and the blob states are plain JSON: a queue worker stores them, dies,
 * and another instance carries on from them with a fresh engine.
 *
 * Vocabulary, used everywhere in lib/:
 * - *source* / *target*: the registry read from / written to (`target` never means anything else);
 * - *repository*: a repository name within a registry (`library/nginx`), never abbreviated;
 * - *part*: one ranged GET of a source blob (4 MiB by default), read into a buffer of the PartReader;
 * - *chunk*: one PATCH body of an upload (CHUNK_SIZE; unbounded = the rest of the blob as one stream);
 * - *step*: one bounded run of work (a queue message, or one turn of the CLI's loop) under a budget;
 * - *options*: the parameter object of a function or constructor (`o` in short bodies);
 * - *referrer*: a manifest whose `subject` names another manifest, its *subject* (a signature, an SBOM);
 *   *fallback tag*: the tag `<alg>-<hex>` of a subject, an index listing its referrers on registries
 *   without the referrers API; *cosign tag*: cosign's older `sha256-<hex>.sig|att|sbom`.
 */
import type { ReferrerView } from '../api/status-view.js';
import type { Digest } from '../oci/digest.js';

export type { ReferrerView };

/** What a user asks for, mirroring `az acr import`. */
export interface ImportRequest {
  /** Source reference: `docker.io/library/nginx:1.27`, `host:5000/repository@sha256:…`. */
  readonly source: string;
  /** Target registry host (login server). */
  readonly target: string;
  /** Target `repository:tag` names; none and no `repository` → the source's own repository and tag. */
  readonly images?: readonly string[];
  /** Import by digest into this repository without a tag. */
  readonly repository?: string;
  /** Move target tags that already point elsewhere. */
  readonly force?: boolean;
  /** Only these platforms of an index (`linux/arm64`). */
  readonly platforms?: readonly string[];
  /** Copy the referrers (signatures, SBOMs, attestations) of every manifest imported, and theirs. */
  readonly includeReferrers?: boolean;
  /** Only referrers of these artifact types (with includeReferrers); all when absent. */
  readonly referrerTypes?: readonly string[];
}

/** One name the import writes in the target registry: a tag, or (without tag) a repository by digest. */
export interface TargetRef {
  readonly repository: string;
  readonly tag?: string;
}

/** A manifest to push, exact bytes (base64) — children before the manifests that list them. */
export interface PlannedManifest {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly bytes: string;
  readonly platform?: string;
}

/**
 * A *referrer* the import copies: a manifest whose `subject` is a manifest of the import (a signature,
 * an SBOM, an attestation — or a referrer of a referrer), or a manifest under a cosign tag
 * `sha256-<hex>.sig|att|sbom` naming one. Its bytes are in `ImportPlan.manifests`, its blobs in `blobs`.
 */
export interface PlannedReferrer {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly size: number;
  /** The manifest's `artifactType`, else its config's media type (a cosign tag: cosign's type for it). */
  readonly artifactType?: string;
  /** The manifest's own annotations (what a referrers list shows of it). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** The manifest it refers to (its `subject`; for a cosign tag, the digest the tag names). */
  readonly subject: Digest;
  /** Found by the source's referrers API, its fallback tag `<alg>-<hex>`, or a cosign tag. */
  readonly via: 'api' | 'tag' | 'cosign';
  /** A cosign tag (`sha256-<hex>.sig`) written on the target too. */
  readonly tag?: string;
}

/** The referrers of a plan as the status and the CLI list them. */
export function referrerViews(plan: ImportPlan): ReferrerView[] | undefined {
  return plan.referrers?.map((r) => ({
    digest: r.digest,
    ...(r.artifactType ? { artifactType: r.artifactType } : {}),
    subject: r.subject,
    ...(r.tag ? { tag: r.tag } : {}),
  }));
}

/** A source's fallback tag index copied as it is: it lists exactly the referrers the import copies of `subject`. */
export interface PlannedReferrersIndex {
  readonly subject: Digest;
  readonly mediaType: string;
  readonly bytes: string;
}

export interface PlannedBlob {
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType: string;
}

export interface ImportPlan {
  readonly version: 1;
  readonly source: { readonly registry: string; readonly repository: string; readonly reference: string };
  readonly target: { readonly registry: string; readonly refs: readonly TargetRef[] };
  /** What the tags point at: the source root, or a filtered index / single platform manifest. */
  readonly root: { readonly digest: Digest; readonly mediaType: string };
  readonly manifests: readonly PlannedManifest[];
  /** Unique distributable blobs over all platforms. */
  readonly blobs: readonly PlannedBlob[];
  readonly force: boolean;
  /** With includeReferrers: the referrers copied, subjects before their referrers. */
  readonly referrers?: readonly PlannedReferrer[];
  readonly referrersIndexes?: readonly PlannedReferrersIndex[];
  /** Things the user should know (filtered index has a new digest, foreign layers left out, …). */
  readonly notes: readonly string[];
  /**
   * Every target ref is a tag, and none of them was on the target when the plan was made (asked unless `force`): the
   * copy takes the repositories to be new to the plan's blobs (copy-blob's `askWithUpload`).
   */
  readonly newTags?: true;
}

export type BlobOutcome = 'existed' | 'mounted' | 'copied';

/** The blob and the target repository a BlobState is about. */
export interface BlobTarget {
  readonly digest: Digest;
  readonly size: number;
  /** Target repository this state is for. */
  readonly repository: string;
  /** Upload sessions started for this blob so far; a restart means the registry lost or refused one. */
  readonly sessions: number;
}

/**
 * Where the copy of one blob into one target repository stands — a state machine:
 * `pending` (nothing started, or a session given up) → `uploading` (a session holding `offset` bytes) →
 * `done`. Every transition is saved before the next request that depends on it.
 */
export type BlobState =
  | (BlobTarget & { readonly phase: 'pending' })
  | (BlobTarget & {
      readonly phase: 'uploading';
      /** Upload session URL (it carries the registry's state token: always the newest). */
      readonly location: string;
      /** Bytes the session holds, confirmed by the registry's answers. */
      readonly offset: number;
      /** Non-final chunks must be at least this long (`OCI-Chunk-Min-Length`). */
      readonly minChunkLength?: number;
    })
  | (BlobTarget & { readonly phase: 'done'; readonly outcome: BlobOutcome });

export type UploadingBlob = Extract<BlobState, { phase: 'uploading' }>;

/** Bytes of the blob present in the target according to a state. */
export function bytesPresent(s: BlobState): number {
  return s.phase === 'done' ? s.size : s.phase === 'uploading' ? s.offset : 0;
}

export interface StepBudget {
  /** Stop starting new chunks after this instant (epoch ms). */
  readonly until: number;
  /** Stop after this many chunks (tests interrupt after every chunk with 1). */
  readonly maxChunks?: number;
  /** Ends everything in flight at once (the step's hard deadline, a canceled job). */
  readonly signal?: AbortSignal;
}

export interface EngineEvents {
  onBytes?(bytes: number): void;
  onBlobDone?(state: BlobState): void;
  onNotice?(message: string): void;
}

export interface FinalizeResult {
  readonly digest: Digest;
  readonly mediaType: string;
  /** Tags written, and tags left alone because they already pointed at the digest. */
  readonly tagged: readonly string[];
  readonly unchanged: readonly string[];
}
