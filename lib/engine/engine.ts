/**
 * The import engine: plan → copy every blob (bounded, resumable steps) → finalize. The CLI runs the
 * steps in a loop in one process; the queue worker runs one step per message. Both use this class.
 */
import type { Config } from '../config.js';
import type { RegistryClient } from '../oci/registry.js';
import { forEachLimited } from '../concurrency.js';
import type { RetryPolicy } from '../retry.js';
import { copyBlob, initialBlobState, type CopyBlobOptions } from './copy-blob.js';
import type { ImportLimits } from './errors.js';
import { finalize, headTags, tagCheckWithLastBlob, type FinalizeOptions, type TagHeads } from './finalize.js';
import { PartPool } from './part-reader.js';
import { plan } from './plan.js';
import { targetRepositories } from './targets.js';
import type { BlobState, EngineEvents, FinalizeResult, ImportPlan, ImportRequest, StepBudget } from './types.js';

export interface EngineOptions extends ImportLimits {
  readonly source: RegistryClient;
  readonly target: RegistryClient;
  /** Bytes per PATCH; Infinity: each blob as one streamed PATCH. */
  readonly chunkSize: number;
  /** A new upload session's first write streamed as one PATCH, ended when the step's budget is spent (copy-blob.ts). */
  readonly streamFirstWrite?: boolean;
  readonly fetchConcurrency: number;
  /** Blob bytes held at most by the engine's own part pool (COPY_MEMORY; default DEFAULT_COPY_MEMORY). */
  readonly copyMemory?: number;
  /** Bytes per ranged GET part (default 4 MiB; tests use small ones). */
  readonly partSize?: number;
  /** Largest part as a multiple of partSize (default MAX_PART_GROWTH; tests pin parts with 1). */
  readonly partGrowth?: number;
  /** Attempts of one part's GET (default: the source client's policy). */
  readonly partRetry?: RetryPolicy;
  /** Sessions tried within one step when the target fails chunks. */
  readonly sessionRetry?: RetryPolicy;
  readonly events?: EngineEvents;
  /** Part slots and buffers shared with other engines of the process (the queue worker runs several
   * steps at once, each with its own engine); by default the engine has its own. */
  readonly partPool?: PartPool;
}

/** What copying a blob needs to know of its import, without the plan's manifests. */
export interface CopyContext {
  readonly source: { readonly registry: string; readonly repository: string };
  readonly target: { readonly registry: string; readonly repositories: readonly string[] };
}

export class ImportEngine {
  /** Parts fetched ahead across all blobs copied at once: one big blob may run FETCH_CONCURRENCY GETs,
   * several share twice that many parts and COPY_MEMORY bytes (bounding memory however many blobs run
   * in parallel). */
  private readonly partPool: PartPool;

  constructor(private readonly o: EngineOptions) {
    this.partPool = o.partPool ?? new PartPool(2 * o.fetchConcurrency, o.copyMemory);
  }

  plan(req: ImportRequest, signal?: AbortSignal): Promise<ImportPlan> {
    return plan(req, { ...this.o, signal });
  }

  static context(p: ImportPlan): CopyContext {
    return {
      source: p.source,
      target: { registry: p.target.registry, repositories: targetRepositories(p.target.refs) },
    };
  }

  /** Fresh states for every blob of the plan in one target repository. */
  static blobStates(p: ImportPlan, repository: string): BlobState[] {
    return p.blobs.map((b) => initialBlobState(b, repository));
  }

  /** One bounded step of one blob; returns the new state (done, or where to carry on). */
  copyBlob(
    of: CopyContext | ImportPlan,
    state: BlobState,
    budget: StepBudget,
    hooks: Pick<CopyBlobOptions, 'checkpoint' | 'heartbeat' | 'onClosing' | 'newToTarget'> = {},
  ): Promise<BlobState> {
    const c = 'refs' in of.target ? ImportEngine.context(of as ImportPlan) : (of as CopyContext);
    // Mount candidates: the source repository when it is the same registry, and the other target repositories.
    const mountFrom = [
      ...(c.source.registry === c.target.registry ? [c.source.repository] : []),
      ...c.target.repositories.filter((r) => r !== state.repository),
    ];
    return copyBlob(state, budget, {
      source: this.o.source,
      sourceRepository: c.source.repository,
      target: this.o.target,
      mountFrom,
      chunkSize: this.o.chunkSize,
      streamFirstWrite: this.o.streamFirstWrite,
      fetchConcurrency: this.o.fetchConcurrency,
      partPool: this.partPool,
      partSize: this.o.partSize,
      partGrowth: this.o.partGrowth,
      partRetry: this.o.partRetry,
      sessionRetry: this.o.sessionRetry,
      events: this.o.events,
      ...hooks,
    });
  }

  finalize(p: ImportPlan, o: FinalizeOptions = {}): Promise<FinalizeResult> {
    return finalize(p, this.o.target, o);
  }

  /** What the plan's target tags point at now (finalize's check, asked ahead: copyAllAndFinalize). */
  headTags(p: ImportPlan, signal?: AbortSignal): Promise<TagHeads> {
    return headTags(p.target.refs, this.o.target, signal);
  }
}

export { forEachLimited } from '../concurrency.js';

/** The settings an engine is built from (lib/config.ts). */
export type EngineSettings = Pick<
  Config,
  'chunkSize' | 'fetchConcurrency' | 'copyMemory' | 'maxManifests' | 'maxBlobs' | 'maxImportBytes'
> &
  Partial<Pick<Config, 'streamUploads'>>;

/**
 * The one way to build an engine from the settings: the CLI's import and sync, and every queue step. `partPool`
 * shares part slots and buffers between engines running at once (the queue worker, a sync pass); without it the
 * engine has its own, of COPY_MEMORY bytes.
 */
export function engineFromConfig(
  config: EngineSettings,
  sides: { source: RegistryClient; target: RegistryClient },
  o: { partPool?: PartPool; events?: EngineEvents } = {},
): ImportEngine {
  return new ImportEngine({
    source: sides.source,
    target: sides.target,
    chunkSize: config.chunkSize,
    // a queue step's upload streamed until its budget is spent (the CLI's chunkSize Infinity streams whole blobs)
    streamFirstWrite: config.streamUploads === true && Number.isFinite(config.chunkSize),
    fetchConcurrency: config.fetchConcurrency,
    copyMemory: config.copyMemory,
    maxManifests: config.maxManifests,
    maxBlobs: config.maxBlobs,
    maxImportBytes: config.maxImportBytes,
    ...(o.partPool ? { partPool: o.partPool } : {}),
    ...(o.events ? { events: o.events } : {}),
  });
}

/** A blob step's length when a run gives neither a deadline nor a step length. */
const DEFAULT_STEP_MS = 60_000;

export interface CopyAllOptions {
  /** Blobs copied at once (BLOB_CONCURRENCY), largest first. */
  readonly blobConcurrency: number;
  /** The CLI: no end to the whole, but each blob still goes in steps of this length, as the queue's do. */
  readonly stepMs?: number;
  /** A queue step: start no blob step after this instant; what is left makes the result incomplete. */
  readonly until?: number;
  readonly signal?: AbortSignal;
  /** Where to copy (default: every target repository of the plan, the first first: the others mount from it). */
  readonly repositories?: readonly string[];
  /** Called once every blob of the last repository is in place or sending the request that closes its upload. */
  readonly onLastBlobClosing?: () => void;
}

export interface CopyAllResult {
  /** Every blob is in every repository. */
  readonly complete: boolean;
  /** Some blob was copied or mounted by this run (not found there already). */
  readonly fresh: boolean;
  readonly blobs: readonly BlobState[];
}

/** Copies every blob of the plan into the repositories, one repository after the other, each blob in bounded steps. */
export async function copyAll(
  engine: ImportEngine,
  p: ImportPlan,
  context: CopyContext,
  o: CopyAllOptions,
): Promise<CopyAllResult> {
  const done: BlobState[] = [];
  let complete = true;
  const repositories = o.repositories ?? context.target.repositories;
  for (const [i, repository] of repositories.entries()) {
    // Largest first: the long copies start early and small blobs fill the gaps.
    const states = ImportEngine.blobStates(p, repository).sort((a, b) => b.size - a.size);
    const closing = i === repositories.length - 1 ? lastBlobClosing(states.length, o.onLastBlobClosing) : undefined;
    await forEachLimited(states, o.blobConcurrency, async (initial) => {
      let s = initial;
      const closes = closing?.();
      while (s.phase !== 'done') {
        if (o.until !== undefined && Date.now() >= o.until) break;
        s = await engine.copyBlob(
          context,
          s,
          { until: o.until ?? Date.now() + (o.stepMs ?? DEFAULT_STEP_MS), signal: o.signal },
          { onClosing: closes, newToTarget: p.newTags },
        );
      }
      if (s.phase === 'done') {
        done.push(s);
        closes?.();
      } else complete = false;
    });
    if (!complete) break;
  }
  // blobs copied or mounted just now: the manifests listing them cannot be in the target yet
  return { complete, fresh: done.some((b) => b.phase === 'done' && b.outcome !== 'existed'), blobs: done };
}

/**
 * Counts the blobs of a repository that are in place or closing: each blob gets its own `closes` (once counted, later
 * calls do nothing), and `then` runs when all of them have been (at once when there are none).
 */
function lastBlobClosing(blobs: number, then: (() => void) | undefined): (() => () => void) | undefined {
  if (!then) return undefined;
  let left = blobs;
  if (left === 0) then();
  return () => {
    let counted = false;
    return () => {
      if (counted) return;
      counted = true;
      if (--left === 0) then();
    };
  };
}

export interface CopyAndFinalizeOptions extends CopyAllOptions {
  /** Called once every blob is in, before any manifest is written; false: stop there (the job ended meanwhile). */
  readonly beforeFinalize?: () => Promise<boolean>;
  /** Blobs were copied by earlier steps too, not only this run: manifests may be there already (default: what the copy saw). */
  readonly fresh?: false;
}

export type CopyAndFinalizeResult =
  | { readonly outcome: 'incomplete'; readonly blobs: readonly BlobState[] }
  | { readonly outcome: 'stopped'; readonly blobs: readonly BlobState[] }
  | { readonly outcome: 'finalized'; readonly blobs: readonly BlobState[]; readonly result: FinalizeResult };

/** "Copy every blob, then finalize": the CLI's whole import, and the queue's small imports and finalize step. */
export async function copyAllAndFinalize(
  engine: ImportEngine,
  p: ImportPlan,
  context: CopyContext,
  o: CopyAndFinalizeOptions,
): Promise<CopyAndFinalizeResult> {
  // Where the tags' PUT is finalize's first write, the tags are asked as the last blob's closing request goes out,
  // not after its answer: one round trip less (lib/engine/finalize.ts, tagCheckWithLastBlob).
  let tagHeads: Promise<TagHeads> | undefined;
  const copied = await copyAll(engine, p, context, {
    ...o,
    ...(tagCheckWithLastBlob(p)
      ? {
          onLastBlobClosing: () => {
            tagHeads = engine.headTags(p, o.signal);
            tagHeads.catch(() => undefined); // observed by finalize; an import that stops first must not leave it unhandled
          },
        }
      : {}),
  });
  if (!copied.complete) return { outcome: 'incomplete', blobs: copied.blobs };
  if (o.beforeFinalize && !(await o.beforeFinalize())) return { outcome: 'stopped', blobs: copied.blobs };
  const result = await engine.finalize(p, { signal: o.signal, fresh: o.fresh ?? copied.fresh, tagHeads });
  return { outcome: 'finalized', blobs: copied.blobs, result };
}

export interface RunOptions {
  readonly blobConcurrency: number;
  /** Length of each step; the CLI has no deadline but still works in steps, as the queue does. */
  readonly stepMs: number;
  readonly onPlan?: (p: ImportPlan) => void;
  readonly signal?: AbortSignal;
}

export interface RunResult extends FinalizeResult {
  readonly plan: ImportPlan;
  readonly blobs: readonly BlobState[];
}

/** Runs a whole import in this process: the CLI's loop over the same steps the queue worker runs. */
export async function runImport(engine: ImportEngine, req: ImportRequest, o: RunOptions): Promise<RunResult> {
  const p = await engine.plan(req, o.signal);
  o.onPlan?.(p);
  const run = await copyAllAndFinalize(engine, p, ImportEngine.context(p), {
    blobConcurrency: o.blobConcurrency,
    stepMs: o.stepMs,
    signal: o.signal,
  });
  // without a deadline or a beforeFinalize, a copy either completes or throws
  if (run.outcome !== 'finalized') throw new Error(`internal: an import without a deadline ended ${run.outcome}`);
  return { ...run.result, plan: p, blobs: run.blobs };
}
