/**
 * Two suites: `unit` (session, money, board logic; no server) and `e2e` (Debian's Chromium driven
 * by playwright-core against the real mesh that `e2e/global-setup.ts` starts).
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
    ],
  },
});
