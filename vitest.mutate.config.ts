import { defineConfig } from 'vitest/config';

/**
 * The tests `npm run mutate` runs against each mutant of lib/engine, lib/policy, lib/request, lib/store and lib/service (stryker.config.mjs):
 * the unit tests that exercise those folders, in-process against fake and scripted registries and memory storage.
 */
export default defineConfig({
  test: {
    include: [
      'test/unit/engine/**/*.test.ts',
      'test/unit/policy/**/*.test.ts',
      'test/unit/store/**/*.test.ts',
      'test/unit/service/**/*.test.ts',
      'test/unit/functions/**/*.test.ts',
      'test/unit/sync/**/*.test.ts',
      'test/unit/oci/auth.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 1, minForks: 1 } },
  },
});
