import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Three workers on two cores: many tests wait on child processes (SIGKILLs, leases, a browser), not the CPU —
    // 307 s against 482 s with two for the whole suite, every test passing in both.
    maxWorkers: 3,
    // One PostgreSQL cluster for the run, started only when a test first asks for a database.
    globalSetup: ['test/postgresStore/postgresCluster.globalSetup.ts'],
  },
});
