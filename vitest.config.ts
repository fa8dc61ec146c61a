import { defineConfig } from 'vitest/config'

// Unit tests live next to the code and need nothing outside the process.
// End-to-end tests share one real control plane per run, started by the global setup
// (or an existing cluster named by E2E_KUBECONFIG).
export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['sdk/**/*.test.ts', 'controller/**/*.test.ts', 'cli/**/*.test.ts', 'test/*.test.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
})
