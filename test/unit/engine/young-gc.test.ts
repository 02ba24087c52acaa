/**
 * The young-generation collection the copy runs while bytes stream through: it happens, and it leaves
 * V8's flags as they were (a new context has no `gc`: the code cache stays valid).
 */
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { collectYoungGarbage } from '../../../lib/engine/young-gc.js';

describe('collectYoungGarbage', () => {
  it('runs a minor collection and leaves --expose-gc off', async () => {
    const seen: PerformanceEntry[] = [];
    const observer = new PerformanceObserver((list) => seen.push(...list.getEntries()));
    observer.observe({ entryTypes: ['gc'] });
    try {
      collectYoungGarbage();
      collectYoungGarbage();
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      observer.disconnect();
    }
    const minor = seen.filter(
      (e) =>
        (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR,
    );
    expect(minor.length).toBeGreaterThanOrEqual(2);
    expect(runInNewContext('typeof gc')).toBe('undefined');
  });
});
