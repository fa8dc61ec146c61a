// `npm run test:compat`: the end-to-end suite against the oldest and the newest supported Kubernetes
// version (dev/cluster/versions.ts), one after the other, then a summary per version. Arguments
// go to vitest (`npm run test:compat -- test/e2e/sdk-`); `KUBE_LOCKS_COMPAT_VERSIONS=1.33` runs
// only the versions it lists. Builds a version's binaries on first use (about 10 minutes).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Child } from '../../dev/child-process.ts'
import { ensureBinaries } from '../../dev/cluster/binaries.ts'
import { RELEASES, type Release, SUPPORT_WINDOW, VERSION_ENV } from '../../dev/cluster/versions.ts'
import type { CompatReport } from './reporter.ts'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const VITEST = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs')

interface Outcome {
  readonly release: Release
  readonly seconds: number
  readonly exitCode: number | null
  readonly report: CompatReport | undefined
}

async function main(): Promise<number> {
  if (process.env.E2E_KUBECONFIG) {
    process.stderr.write('test:compat starts its own control planes: unset E2E_KUBECONFIG\n')
    return 2
  }
  const wanted = process.env.KUBE_LOCKS_COMPAT_VERSIONS?.split(',').map((v) => v.trim()) ?? [
    SUPPORT_WINDOW.oldest,
    SUPPORT_WINDOW.newest,
  ]
  const releases = wanted.map((minor) => {
    const release = RELEASES[minor]
    if (!release)
      throw new Error(`no pinned release ${minor}: use one of ${Object.keys(RELEASES).join(', ')}`)
    return release
  })
  const dir = mkdtempSync(join(tmpdir(), 'kube-locks-compat-'))
  const outcomes: Outcome[] = []
  try {
    for (const release of releases) {
      const log = (line: string) => process.stderr.write(`[compat ${release.minor}] ${line}\n`)
      await ensureBinaries(log, release)
      log(`running the end-to-end suite against Kubernetes ${release.kubernetes} (etcd ${release.etcd})`)
      const file = join(dir, `${release.minor}.json`)
      const started = Date.now()
      const exitCode = await vitest(process.argv.slice(2), {
        ...process.env,
        [VERSION_ENV]: release.minor,
        KUBE_LOCKS_COMPAT_REPORT: file,
      })
      outcomes.push({ release, seconds: (Date.now() - started) / 1000, exitCode, report: readReport(file) })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  process.stdout.write(summary(outcomes))
  return outcomes.every((o) => o.exitCode === 0 && o.report && o.report.failed.length === 0) ? 0 : 1
}

function vitest(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number | null> {
  // This process's Node (the project's), not whichever `node` comes first on the PATH.
  const child = new Child(
    'vitest',
    process.execPath,
    [
      VITEST,
      'run',
      '--project',
      'e2e',
      '--project',
      'e2e-cluster-wide',
      '--reporter=default',
      '--reporter=./test/compat/reporter.ts',
      ...args,
    ],
    { cwd: ROOT, env, stdio: 'inherit' },
  )
  return new Promise((resolve, reject) => {
    child.process.on('error', reject)
    void child.closed.then(({ code }) => resolve(code))
  })
}

function readReport(file: string): CompatReport | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as CompatReport
  } catch {
    return undefined
  }
}

function summary(outcomes: readonly Outcome[]): string {
  const lines = ['', 'compatibility summary']
  for (const { release, seconds, exitCode, report } of outcomes) {
    const head = `Kubernetes ${release.kubernetes} (etcd ${release.etcd}), ${Math.round(seconds)} s`
    if (!report) {
      lines.push(`  ${head}: no report (vitest exited with ${exitCode})`)
      continue
    }
    lines.push(
      `  ${head}: ${report.passed} passed, ${report.failed.length} failed, ${report.skipped.length} skipped`,
    )
    for (const { test, error } of report.failed) lines.push(`    failed   ${test}: ${error}`)
    for (const { test, note } of report.skipped)
      lines.push(`    skipped  ${test}: ${note ?? '(no reason given)'}`)
  }
  return `${lines.join('\n')}\n`
}

process.exitCode = await main()
