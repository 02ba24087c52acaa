/**
 * Collecting young garbage on purpose while bytes stream through.
 *
 * Node.js reads every socket into a fresh buffer of up to 64 KiB, which the copy drops at once (its bytes
 * are copied into pooled blocks). V8 frees such buffers only in a young-generation collection, and starts
 * one for them only once 32 MiB of young buffers have piled up (twice its largest semi-space, fixed at
 * build time), so a copy carries up to 32 MiB of dead socket buffers, and the allocator keeps asking the
 * kernel for fresh pages (page faults: CPU) instead of reusing the ones just freed. A young collection
 * after every 4 MiB (the CLI) or 8 MiB (the service) keeps both small: it finds almost nothing alive.
 *
 * Not all of them: a buffer still referenced at two young collections (it waits in a connection paused for room
 * in the pool, or in a part that waits for a block) is moved to the old generation, where only a full collection
 * frees it, and V8 starts one on its own only after tens of MB more. So the copy also runs a full collection
 * whenever ArrayBuffer memory beyond its pooled blocks has grown by FULL_GC_AFTER_BYTES (part-reader.ts).
 *
 * V8 gives JavaScript its collector only with `--expose-gc`; the flag is set for the moment it takes to
 * fetch the function from a new context, then unset again (a code cache is checked against the flags).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collector = (options?: { type: 'minor' }) => void;

/** Bytes that pass between two young collections (the CLI: every MB of dead buffers held counts in its peak RSS). */
export const YOUNG_GC_EVERY_BYTES = 4 * 1024 * 1024;

/**
 * The same in the service's worker, where a young collection costs more (its heap also holds the Functions runtime,
 * the storage SDKs and the state of every copy in the process) and a few MB more of dead buffers are lost in the rest
 * of its memory. Six 300 MiB imports at once on one local-host worker, 7 runs each (2026-12-05): every 8 MiB, worker
 * CPU 3.90–4.33 s (median 3.95 s), all done in 6.26–6.83 s, worker peak RSS 192–216 MB; every 4 MiB, 4.24–4.58 s
 * (4.35 s), 6.65–7.13 s, 201–215 MB. The CLI, every 8 MiB against 4 MiB: 2–3 % less CPU for 3–5 MB more peak RSS.
 */
export const SERVICE_YOUNG_GC_EVERY_BYTES = 8 * 1024 * 1024;

/**
 * ArrayBuffer bytes beyond the pooled blocks that may pile up in the old generation before the CLI runs a full
 * collection. Measured 2026-12-05 on the 3-platform index from the far-away source: without full collections,
 * ArrayBuffer memory after each young one grew from 18 to 33-40 MiB while the pool held 18-20 MiB (a heap snapshot,
 * whose collection is a full one, found the rest dead); with them (5 instead of V8's 2, 3-8 ms each), peak RSS
 * 98-102 -> 89-91 MB, CPU 0.80 -> 0.81 s, the same wall time (5 runs each, interleaved; docs/benchmarks.md).
 */
export const FULL_GC_AFTER_BYTES = 8 * 1024 * 1024;

let collector: Collector | null | undefined;

function obtain(): Collector | null {
  const own = (globalThis as { gc?: Collector }).gc;
  if (typeof own === 'function') return own;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as Collector;
  } catch {
    return null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/** Runs a young-generation collection (nothing where the runtime refuses to expose its collector). */
export function collectYoungGarbage(): void {
  if (collector === undefined) collector = obtain();
  collector?.({ type: 'minor' });
}

/**
 * Runs a full collection (old generation too). `gc()` without options: Node.js 20's V8 runs a young collection for
 * any options object, `{ type: 'major' }` included (seen with --trace-gc).
 */
export function collectAllGarbage(): void {
  if (collector === undefined) collector = obtain();
  collector?.();
}
