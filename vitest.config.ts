import { defineConfig } from 'vitest/config'

// Unit tests live next to the code and need nothing outside the process.
// End-to-end tests share one real control plane per run, started by the global setup
// (or an existing cluster named by E2E_KUBECONFIG).
const CLUSTER_WIDE = ['test/e2e/controller-scope.test.ts', 'test/e2e/install-controller-rbac.test.ts']

export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'sdk/**/*.test.ts',
            'controller/**/*.test.ts',
            'cli/**/*.test.ts',
            'dev/**/*.test.ts',
            'test/*.test.ts',
          ],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          exclude: CLUSTER_WIDE,
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        // Controllers that watch every namespace would act on the leases of tests running beside
        // them (as a real controller would): these files get a control plane of their own, after
        // the rest, one file at a time.
        test: {
          name: 'e2e-cluster-wide',
          include: CLUSTER_WIDE,
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})
