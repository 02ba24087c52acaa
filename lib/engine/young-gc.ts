/**
 * Collecting young garbage on purpose while bytes stream through.
 *
 * Node.js reads every socket into a fresh buffer of up to 64 KiB, which the copy drops at once (its bytes
 * are copied into pooled blocks). V8 frees such buffers only in a young-generation collection, and starts
 * one for them only once 32 MiB of young buffers have piled up (twice its largest semi-space, fixed at
 * build time), so a copy carries up to 32 MiB of dead socket buffers, and the allocator keeps asking the
 * kernel for fresh pages (page faults: CPU) instead of reusing the ones just freed. A young collection
 * after every 4 MiB keeps both small: it finds almost nothing alive, and costs well under a
 * millisecond.
 *
 * V8 gives JavaScript its collector only with `--expose-gc`; the flag is set for the moment it takes to
 * fetch the function from a new context, then unset again (a code cache is checked against the flags).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collector = (options: { type: 'minor' | 'major' }) => void;

/** Bytes that pass between two young collections. */
export const YOUNG_GC_EVERY_BYTES = 4 * 1024 * 1024;

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
