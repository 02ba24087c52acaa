import { defineConfig } from 'vitest/config';

/**
 * The tests `npm run mutate` runs against each mutant of lib/engine, lib/policy, lib/request, lib/store and lib/service (stryker.config.mjs):
 * the unit tests that exercise those folders, in-process against fake and scripted registries and memory storage.
 */
const ALL = [
  'test/unit/engine/**/*.test.ts',
  'test/unit/policy/**/*.test.ts',
  'test/unit/request/**/*.test.ts',
  'test/unit/store/**/*.test.ts',
  'test/unit/service/**/*.test.ts',
  'test/unit/functions/**/*.test.ts',
  'test/unit/sync/**/*.test.ts',
  'test/unit/oci/auth.test.ts',
];

/**
 * MUTATE_TESTS narrows the tests to a comma list of folders under test/unit/ or test files (MUTATE_TESTS=engine,policy):
 * every import of the service runs the engine, so a mutant of lib/engine is covered by hundreds of service tests, each
 * run again for every mutant that survives them. Scored against the engine's own tests, the engine runs in an hour
 * instead of several; the score then says what those tests hold, a floor for the whole suite.
 */
const narrowed = (process.env.MUTATE_TESTS ?? '')
  .split(',')
  .map((t) => t.trim())
  .filter(Boolean)
  .map((t) => (t.endsWith('.test.ts') ? `test/unit/${t}` : `test/unit/${t}/**/*.test.ts`));

export default defineConfig({
  test: {
    include: narrowed.length > 0 ? narrowed : ALL,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 1, minForks: 1 } },
  },
});
