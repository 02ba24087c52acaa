/**
 * The import engine: plan → copy every blob (bounded, resumable steps) → finalize. The CLI runs the
 * steps in a loop in one process; the queue worker runs one step per message. Both use this class.
 */
import type { RegistryClient } from '../oci/registry.js';
import { copyBlob, initialBlobState } from './copy-blob.js';
import { FetchSlots } from './part-reader.js';
import { finalize } from './finalize.js';
import { plan } from './plan.js';
import type { BlobState, EngineEvents, FinalizeResult, ImportPlan, ImportRequest, StepBudget } from './types.js';

export interface EngineOptions {
  readonly source: RegistryClient;
  readonly target: RegistryClient;
  readonly chunkSize: number;
  readonly fetchConcurrency: number;
  /** Bytes per ranged GET part (default 4 MiB; tests use small ones). */
  readonly fetchPartSize?: number;
  readonly maxManifests: number;
  readonly events?: EngineEvents;
  /** Part budget shared with other engines of the process (the queue worker runs several steps at
   * once, each with its own engine); by default the engine has its own. */
  readonly fetchSlots?: FetchSlots;
}

export class ImportEngine {
  /** Parts fetched ahead across all blobs copied at once: one big blob may run FETCH_CONCURRENCY GETs,
   * several share twice that many parts in memory (bounding buffers however many blobs run in parallel). */
  private readonly fetchSlots: FetchSlots;

  constructor(private readonly o: EngineOptions) {
    this.fetchSlots = o.fetchSlots ?? new FetchSlots(2 * o.fetchConcurrency);
  }

  plan(req: ImportRequest): Promise<ImportPlan> {
    return plan(req, { source: this.o.source, target: this.o.target, maxManifests: this.o.maxManifests });
  }

  /** Target repositories in the order their blobs are copied (later ones mount from earlier ones). */
  static repositories(p: ImportPlan): string[] {
    return [...new Set(p.target.refs.map((r) => r.repository))];
  }

  /** Fresh states for every blob of the plan in one target repository. */
  static blobStates(p: ImportPlan, repository: string): BlobState[] {
    return p.blobs.map((b) => initialBlobState(b, repository));
  }

  /** One bounded step of one blob; returns the new state (done, or where to carry on). */
  copyBlob(p: ImportPlan, state: BlobState, budget: StepBudget, checkpoint?: (s: BlobState) => Promise<void>): Promise<BlobState> {
    const sameRegistry = p.source.registry === p.target.registry;
    const mountFrom = [
      ...(sameRegistry ? [p.source.repository] : []),
      ...ImportEngine.repositories(p).filter((r) => r !== state.repository),
    ];
    return copyBlob(state, budget, {
      source: this.o.source,
      sourceRepository: p.source.repository,
      target: this.o.target,
      mountFrom,
      chunkSize: this.o.chunkSize,
      fetchConcurrency: this.o.fetchConcurrency,
      fetchSlots: this.fetchSlots,
      fetchPartSize: this.o.fetchPartSize,
      events: this.o.events,
      checkpoint,
    });
  }

  finalize(p: ImportPlan): Promise<FinalizeResult> {
    return finalize(p, this.o.target);
  }
}

export interface RunOptions {
  readonly blobConcurrency: number;
  /** Length of each step; the CLI has no deadline but still works in steps, as the queue does. */
  readonly stepMs: number;
  readonly onPlan?: (p: ImportPlan) => void;
}

export interface RunResult extends FinalizeResult {
  readonly plan: ImportPlan;
  readonly blobs: readonly BlobState[];
}

/** Runs a whole import in this process: the CLI's loop over the same steps the queue worker runs. */
export async function runImport(engine: ImportEngine, req: ImportRequest, o: RunOptions): Promise<RunResult> {
  const p = await engine.plan(req);
  o.onPlan?.(p);
  const done: BlobState[] = [];
  for (const repository of ImportEngine.repositories(p)) {
    // Largest first: the long copies start early and small blobs fill the gaps.
    const states = ImportEngine.blobStates(p, repository).sort((a, b) => b.size - a.size);
    await forEachLimited(states, o.blobConcurrency, async (initial) => {
      let s = initial;
      while (!s.done) s = await engine.copyBlob(p, s, { until: Date.now() + o.stepMs });
      done.push(s);
    });
  }
  const result = await engine.finalize(p);
  return { ...result, plan: p, blobs: done };
}

/** Runs `fn` over `items` with at most `limit` at once; the first failure stops new work and is thrown. */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed !== undefined) throw failed;
}
