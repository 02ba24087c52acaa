/** The pool the service's steps share: its bounds come from the settings, its young collections from young-gc.ts. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../lib/config.js';
import { PartPool } from '../../../lib/engine/part-reader.js';
import { SERVICE_YOUNG_GC_EVERY_BYTES, YOUNG_GC_EVERY_BYTES } from '../../../lib/engine/young-gc.js';
import { workerPartPool } from '../../../lib/service/service.js';

describe('workerPartPool', () => {
  it('takes FETCH_CONCURRENCY and COPY_MEMORY from the settings and collects young garbage every 8 MiB, not the CLI’s 4, and no full collections', () => {
    const pool = workerPartPool(loadConfig({ FETCH_CONCURRENCY: '3', COPY_MEMORY: '5MiB' }));
    expect(pool.slots).toBe(6);
    expect(pool.maxBlocks).toBe(5);
    expect(SERVICE_YOUNG_GC_EVERY_BYTES).toBe(8 * 1024 * 1024);
    expect(pool.youngGcEveryBytes).toBe(SERVICE_YOUNG_GC_EVERY_BYTES);
    expect(new PartPool(6).youngGcEveryBytes).toBe(YOUNG_GC_EVERY_BYTES);
    expect(YOUNG_GC_EVERY_BYTES).not.toBe(SERVICE_YOUNG_GC_EVERY_BYTES);
    expect(pool.fullGcAfterBytes).toBeNull();
    expect(new PartPool(6).fullGcAfterBytes).not.toBeNull();
  });
});
