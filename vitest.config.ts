import { defineConfig } from 'vitest/config';

/**
 * Three projects: `unit` and `property` need no servers; `integration`
 * (which includes `test/e2e`) gets real servers from `test/support/global-setup.ts`.
 */
export default defineConfig({
  test: {
    reporters: ['default'],
    // Real servers share two cores: one test file at a time keeps timings honest.
    fileParallelism: false,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/property/**/*.test.ts'],
          environment: 'node',
          // Properties run hundreds of cases; a generous bound, not a speed check.
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
