import type { Reporter, TestModule } from 'vitest/node'

/**
 * Ends a run with one plain line, `tests: N passed, N failed, N skipped`, that log readers
 * and CI systems recognise whatever the test runner.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const count = { passed: 0, failed: 0, skipped: 0 }
    for (const module of modules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === 'passed' || state === 'failed') count[state]++
        else count.skipped++
      }
      // A file that fails before its tests run (an import error, a failing beforeAll) has no failed test.
      if (module.state() === 'failed' && [...module.children.allTests('failed')].length === 0) count.failed++
    }
    process.stdout.write(
      `\ntests: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`,
    )
  }
}
