/**
 * The collections the copy runs while bytes stream through: the young one and the full one happen, each of its
 * kind, and they leave V8's flags as they were (a new context has no `gc`: the code cache stays valid).
 */
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { collectAllGarbage, collectYoungGarbage } from '../../../lib/engine/young-gc.js';

/** The kinds of the collections `run` makes (perf_hooks' gc entries). */
async function collectionsOf(run: () => void): Promise<number[]> {
  const seen: PerformanceEntry[] = [];
  const observer = new PerformanceObserver((list) => seen.push(...list.getEntries()));
  observer.observe({ entryTypes: ['gc'] });
  try {
    run();
    await new Promise((resolve) => setTimeout(resolve, 100));
  } finally {
    observer.disconnect();
  }
  return seen.map((e) => (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1);
}

describe('collectYoungGarbage', () => {
  it('runs a minor collection and leaves --expose-gc off', async () => {
    const kinds = await collectionsOf(() => {
      collectYoungGarbage();
      collectYoungGarbage();
    });
    expect(kinds.filter((k) => k === constants.NODE_PERFORMANCE_GC_MINOR).length).toBeGreaterThanOrEqual(2);
    expect(runInNewContext('typeof gc')).toBe('undefined');
  });
});

describe('collectAllGarbage', () => {
  it('runs a major collection (not the young one Node.js 20 runs for gc({ type: "major" })) and leaves --expose-gc off', async () => {
    const kinds = await collectionsOf(() => collectAllGarbage());
    expect(kinds).toContain(constants.NODE_PERFORMANCE_GC_MAJOR);
    expect(runInNewContext('typeof gc')).toBe('undefined');
  });
});
