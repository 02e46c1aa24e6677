/**
 * Three suites: `unit` (session, money, board logic; no server), `e2e` (Debian's Chromium driven
 * by playwright-core against the real mesh that `e2e/global-setup.ts` starts), and `bench` (the
 * board's figures for `make bench`, on the same mesh).
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['shared/src/**/*.test.ts', 'dashboard/src/**/*.test.ts', 'portal/src/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/tests/**/*.test.ts'],
          globalSetup: ['e2e/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 300_000,
          // Two cores: one browser test file at a time per core.
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'bench',
          include: ['e2e/bench/**/*.test.ts'],
          globalSetup: ['e2e/global-setup.ts'],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          maxWorkers: 1,
        },
      },
    ],
  },
});
