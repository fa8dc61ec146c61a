import { writeFileSync } from 'node:fs'
import { relative } from 'node:path'
import type { Reporter, TestModule } from 'vitest/node'

/** What one run of the suite against one Kubernetes version gave, as `run.ts` reads it. */
export interface CompatReport {
  readonly passed: number
  readonly failed: readonly { readonly test: string; readonly error: string }[]
  readonly skipped: readonly { readonly test: string; readonly note: string | undefined }[]
}

/** Writes a {@link CompatReport} to the file `KUBE_LOCKS_COMPAT_REPORT` names. */
export default class CompatReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const file = process.env.KUBE_LOCKS_COMPAT_REPORT
    if (!file) return
    const report = {
      passed: 0,
      failed: [] as CompatReport['failed'][number][],
      skipped: [] as CompatReport['skipped'][number][],
    }
    for (const module of modules) {
      const where = relative(process.cwd(), module.moduleId)
      for (const test of module.children.allTests()) {
        const name = `${where} > ${test.fullName}`
        const result = test.result()
        if (result.state === 'passed') report.passed++
        else if (result.state === 'failed') {
          const error = result.errors?.[0]?.message ?? 'failed'
          report.failed.push({ test: name, error: error.split('\n')[0] ?? error })
        } else report.skipped.push({ test: name, note: result.state === 'skipped' ? result.note : 'not run' })
      }
      // A file that fails before its tests run (an import error, a failing beforeAll) has no failed test.
      if (module.state() === 'failed' && [...module.children.allTests('failed')].length === 0) {
        const error = module.errors()[0]?.message ?? 'the file failed before its tests ran'
        report.failed.push({ test: where, error: error.split('\n')[0] ?? error })
      }
    }
    writeFileSync(file, JSON.stringify(report, null, 2))
  }
}
