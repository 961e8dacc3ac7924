import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // One PostgreSQL cluster for the run, started only when a test first asks for a database.
    globalSetup: ['test/postgresStore/postgresCluster.globalSetup.ts'],
  },
});
