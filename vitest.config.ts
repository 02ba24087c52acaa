import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real registries; two cores do not gain from many forks.
    pool: 'forks',
    // CI (.ci/run) runs a failed test once more: a real registry, Azurite and worker processes on a loaded two-core
    // machine. A test that passes only on its second try is named in CI's report (.ci/report.mjs), never hidden.
    retry: Number(process.env.OCI_IMPORT_TEST_RETRY ?? 0),
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
