/**
 * The import engine: plan → copy every blob (bounded, resumable steps) → finalize. The CLI runs the
 * steps in a loop in one process; the queue worker runs one step per message. Both use this class.
 */
import type { RegistryClient } from '../oci/registry.js';
import { forEachLimited } from './concurrency.js';
import type { RetryPolicy } from '../retry.js';
import { copyBlob, initialBlobState } from './copy-blob.js';
import type { ImportLimits } from './errors.js';
import { finalize, type FinalizeOptions } from './finalize.js';
import { PartBudget } from './part-reader.js';
import { plan } from './plan.js';
import { targetRepositories } from './targets.js';
import type { BlobState, EngineEvents, FinalizeResult, ImportPlan, ImportRequest, StepBudget } from './types.js';

export interface EngineOptions extends ImportLimits {
  readonly source: RegistryClient;
  readonly target: RegistryClient;
  /** Bytes per PATCH; Infinity: each blob as one streamed PATCH. */
  readonly chunkSize: number;
  readonly fetchConcurrency: number;
  /** Blob bytes held at most by the engine's own part budget (COPY_MEMORY; default DEFAULT_COPY_MEMORY). */
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
  readonly partBudget?: PartBudget;
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
  private readonly partBudget: PartBudget;

  constructor(private readonly o: EngineOptions) {
    this.partBudget = o.partBudget ?? new PartBudget(2 * o.fetchConcurrency, o.copyMemory);
  }

  plan(req: ImportRequest, signal?: AbortSignal): Promise<ImportPlan> {
    return plan(req, { ...this.o, signal });
  }

  static context(p: ImportPlan): CopyContext {
    return { source: p.source, target: { registry: p.target.registry, repositories: targetRepositories(p.target.refs) } };
  }

  /** Fresh states for every blob of the plan in one target repository. */
  static blobStates(p: ImportPlan, repository: string): BlobState[] {
    return p.blobs.map((b) => initialBlobState(b, repository));
  }

  /** One bounded step of one blob; returns the new state (done, or where to carry on). */
  copyBlob(of: CopyContext | ImportPlan, state: BlobState, budget: StepBudget, checkpoint?: (s: BlobState) => Promise<void>): Promise<BlobState> {
    const c = 'refs' in of.target ? ImportEngine.context(of as ImportPlan) : of as CopyContext;
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
      fetchConcurrency: this.o.fetchConcurrency,
      partBudget: this.partBudget,
      partSize: this.o.partSize, partGrowth: this.o.partGrowth,
      partRetry: this.o.partRetry,
      sessionRetry: this.o.sessionRetry,
      events: this.o.events,
      checkpoint,
    });
  }

  finalize(p: ImportPlan, o: FinalizeOptions = {}): Promise<FinalizeResult> {
    return finalize(p, this.o.target, o);
  }
}

export { forEachLimited } from './concurrency.js';

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
  const context = ImportEngine.context(p);
  const done: BlobState[] = [];
  for (const repository of context.target.repositories) {
    // Largest first: the long copies start early and small blobs fill the gaps.
    const states = ImportEngine.blobStates(p, repository).sort((a, b) => b.size - a.size);
    await forEachLimited(states, o.blobConcurrency, async (initial) => {
      let s = initial;
      while (s.phase !== 'done') s = await engine.copyBlob(context, s, { until: Date.now() + o.stepMs, signal: o.signal });
      done.push(s);
    });
  }
  // blobs copied or mounted just now: the manifests listing them cannot be in the target yet
  const fresh = done.some((b) => b.phase === 'done' && b.outcome !== 'existed');
  const result = await engine.finalize(p, { signal: o.signal, fresh });
  return { ...result, plan: p, blobs: done };
}
