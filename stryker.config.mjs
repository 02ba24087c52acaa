// `npm run mutate`: mutation testing of the core — lib/engine, lib/policy, lib/request, lib/store, lib/service — with Stryker and its vitest
// runner. Stryker changes the code one small way at a time (a condition negated, a boundary moved, a statement
// removed…) and runs the tests that cover it: a mutant no test notices is a behaviour nothing holds. Results:
// docs/testing.md. Not run by CI: the whole core takes many hours on 2 cores; run it a folder or a few files at a time.
//
// Scoped for a small machine: the unit tests of these folders only (vitest.mutate.config.ts; the real-registry and
// host tests cost seconds each and run in CI anyway), only the tests that cover a mutant run for it (perTest), two
// test runners, and incremental mode: a rerun tests again only the mutants whose code or tests changed.
// MUTATE narrows a run: a comma list of folders or files under lib/ (MUTATE=policy, MUTATE=engine/copy-blob.ts,store).
// MUTATE_TESTS narrows the tests run against the mutants (vitest.mutate.config.ts): MUTATE_TESTS=engine,policy.
const targets = (process.env.MUTATE ?? 'engine,policy,request,store,service')
  .split(',')
  .map((t) => t.trim())
  .filter(Boolean);

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  mutate: targets.map((t) => (t.endsWith('.ts') ? `lib/${t}` : `lib/${t}/**/*.ts`)),
  coverageAnalysis: 'perTest',
  // Mutants in code that runs when a module loads (constants, tables) would need every test each: reported, not run.
  ignoreStatic: true,
  concurrency: Number(process.env.MUTATE_CONCURRENCY ?? 2),
  incremental: true,
  incrementalFile: '.stryker/incremental.json',
  tempDirName: '.stryker/tmp',
  cleanTempDir: 'always',
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: '.stryker/mutation.json' },
  htmlReporter: { fileName: '.stryker/mutation.html' },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0 },
  // Tests with real sockets: a mutant that makes one hang is a timeout (counted as killed), not a wait forever.
  timeoutMS: 5_000,
  thresholds: { high: 80, low: 60, break: null },
};
