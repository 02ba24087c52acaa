/**
 * The import as data. A plan and the blob states are plain JSON: a queue worker stores them, dies,
 * and another instance carries on from them with a fresh engine.
 */
import type { Digest } from '../oci/digest.js';

/** What a user asks for, mirroring `az acr import`. */
export interface ImportRequest {
  /** Source reference: `docker.io/library/nginx:1.27`, `host:5000/repo@sha256:…`. */
  readonly source: string;
  /** Target registry host (login server). */
  readonly target: string;
  /** Target `repo:tag` names; none and no `repository` → the source's own repository and tag. */
  readonly images?: readonly string[];
  /** Import by digest into this repository without a tag. */
  readonly repository?: string;
  /** Move target tags that already point elsewhere. */
  readonly force?: boolean;
  /** Only these platforms of an index (`linux/arm64`). */
  readonly platforms?: readonly string[];
}

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
  /** Things the user should know (filtered index has a new digest, foreign layers left out, …). */
  readonly notes: readonly string[];
}

export type BlobOutcome = 'existed' | 'mounted' | 'copied';

/** Where the copy of one blob into one target repository stands. */
export interface BlobState {
  readonly digest: Digest;
  readonly size: number;
  /** Target repository this state is for. */
  readonly repository: string;
  readonly done: boolean;
  readonly outcome?: BlobOutcome;
  /** Upload session URL (it carries the registry's state token: always the newest). */
  readonly location?: string;
  /** Bytes the session holds, confirmed by the registry's answers. */
  readonly offset: number;
  /** Non-final chunks must be at least this long (`OCI-Chunk-Min-Length`). */
  readonly minChunkLength?: number;
  /** Sessions started for this blob; a restart means the registry lost or refused one. */
  readonly sessions: number;
}

export interface StepBudget {
  /** Stop starting new chunks after this instant (epoch ms). */
  readonly until: number;
  /** Stop after this many chunks (tests interrupt after every chunk with 1). */
  readonly maxChunks?: number;
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
