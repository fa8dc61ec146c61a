/**
 * `npm run demo` against the real API server: the scenario's processes take real locks next to the
 * controller, and the summary built from their reports must show the promises kept: never two holders
 * of one lock, a `timeout: 0` caller refused at once, an overrun that ends in the holder's signal and
 * the controller's `LockExpired` Event, never more than the limit inside the partner API's semaphore,
 * never a writer of the account together with a reader. The demo must leave no process running and no
 * lock held.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { LockMode, Report } from '../../demo/protocol.ts'
import { PARTNER_API, REPORTED_ACCOUNT } from '../../demo/scenario.ts'
import { type ExpiredEvent, kept, summaryText } from '../../demo/summary.ts'
import { type SemaphoreSummary, type SharedSummary, summarize, type Tagged } from '../../demo/timeline.ts'
import { createKubernetesLeaseStore, MANAGED_BY_SELECTOR } from '../../sdk/internal.ts'
import { adminKubeConfig, createNamespace, kubeconfigPath } from './support.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

interface DemoResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the demo to its end; kills it (and fails) if it outlives `timeoutMs`. */
function runDemo(args: readonly string[], timeoutMs: number, onStart?: (child: ChildProcess) => void) {
  return new Promise<DemoResult>((resolveRun, reject) => {
    const child = spawn(process.execPath, ['demo/main.ts', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the demo ran longer than ${timeoutMs} ms\n${stderr}`))
    }, timeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolveRun({ code, stdout, stderr })
    })
    onStart?.(child)
  })
}

/** Whether a process still runs: a zombie waiting to be reaped does not. */
function runs(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

async function heldLeases(namespace: string): Promise<string[]> {
  const store = createKubernetesLeaseStore(adminKubeConfig())
  try {
    const { items } = await store.list(namespace, { labelSelector: MANAGED_BY_SELECTOR })
    return items
      .filter((lease) => lease.holderIdentity)
      .map((lease) => `${lease.name}: ${lease.holderIdentity}`)
  } finally {
    await store.close?.()
  }
}

describe('the demo summary', () => {
  const at = (instance: string, report: Report): Tagged => ({ instance, report })
  const exclusive: LockMode = { kind: 'exclusive' }
  const acquired = (
    instance: string,
    holder: string,
    token: string,
    requestedAt: number,
    start: number,
    { lock = 'l', mode = exclusive }: { lock?: string; mode?: LockMode } = {},
  ) => at(instance, { type: 'acquired', lock, mode, holder, token, requestedAt, at: start, expires: 10 })
  const ended = (
    instance: string,
    holder: string,
    end: number,
    how: 'released' | 'expired' = 'released',
    lock = 'l',
  ) => at(instance, { type: 'ended', lock, holder, how, at: end })
  /** A hold of `lock` from `start` to `end`, asked for at `requestedAt`. */
  const hold = (
    holder: string,
    mode: LockMode,
    token: string,
    [requestedAt, start, end]: [number, number, number],
    lock = 'l',
  ) => [
    acquired(holder, holder, token, requestedAt, start, { lock, mode }),
    ended(holder, holder, end, 'released', lock),
  ]
  const semaphore = (limit: number): LockMode => ({ kind: 'semaphore', limit })
  const shared: LockMode = { kind: 'shared' }
  const noEvents: ExpiredEvent[] = []
  const text = (reports: Tagged[]) =>
    summaryText(summarize(reports), noEvents, { namespace: 'n', seconds: 1, processes: 1 })

  it('counts waits and handovers, and finds no overlap in a clean handover', () => {
    const summary = summarize([
      acquired('a', 'a1', '10', 0, 1),
      acquired('b', 'b1', '12', 2, 6),
      ended('a', 'a1', 5),
      ended('b', 'b1', 9),
      at('c', { type: 'timeout', lock: 'l', timeout: 0, heldBy: 'b1', requestedAt: 7, at: 7.5 }),
    ])
    expect(summary).toMatchObject({
      acquisitions: 2,
      waits: 1,
      timeouts: 1,
      immediateTimeouts: 1,
      maxHolders: 1,
      fencingViolations: [],
      violations: [],
      handoverMs: { count: 1, p50: 1, p99: 1 },
    })
    expect(kept(summary)).toBe(true)
  })

  it('reports two holders at once, a token that went backwards, and an unreported end as held until it expires', () => {
    const summary = summarize([
      acquired('a', 'a1', '20', 0, 1),
      ended('a', 'a1', 5),
      acquired('b', 'b1', '19', 4, 4.5),
      ended('b', 'b1', 8),
      // Never reports its end: it counts as holding until `expires` (10 s) after its start.
      acquired('c', 'c1', '30', 8, 9),
      acquired('d', 'd1', '31', 8, 15_000),
      ended('d', 'd1', 15_001, 'expired'),
    ])
    expect(summary.maxHolders).toBe(2)
    expect(summary.fencingViolations).toHaveLength(1)
    expect(summary.expirations).toBe(1)
    expect(kept(summary)).toBe(false)
    expect(summarize([acquired('c', 'c1', '30', 8, 9), acquired('d', 'd1', '31', 8, 9_000)]).maxHolders).toBe(
      2,
    )
  })

  it('finds a semaphore kept: at most its limit inside, the peak, the calls and the waits for a place', () => {
    const summary = summarize([
      ...hold('a', semaphore(2), '10', [0, 1, 5]),
      ...hold('b', semaphore(2), '11', [0, 2, 6]),
      // Asked while two were inside; got in when `a` left.
      ...hold('c', semaphore(2), '14', [3, 5, 9]),
      // Tokens of holders in together are not ordered among themselves.
      ...hold('d', semaphore(2), '12', [7, 7.5, 10]),
    ])
    expect(summary.violations).toEqual([])
    expect(summary.semaphores).toEqual([{ lock: 'l', limit: 2, calls: 4, waits: 1, timeouts: 0, peak: 2 }])
    // No exclusive holder: no handover counted and no exclusive peak.
    expect(summary.handoverMs.count).toBe(0)
    expect(summary.maxHoldersByLock).toEqual({})
  })

  it('reports three semaphore holders inside at once over a limit of 2', () => {
    const reports = [
      ...hold('a', semaphore(2), '10', [0, 1, 6]),
      ...hold('b', semaphore(2), '11', [0, 2, 6]),
      ...hold('c', semaphore(2), '12', [0, 3, 6]),
    ]
    const summary = summarize(reports)
    expect(summary.semaphores[0]?.peak).toBe(3)
    expect(summary.violations).toEqual([expect.stringMatching(/^l: 3 semaphore holders .* limit of 2$/)])
    expect(kept(summary)).toBe(false)
    expect(text(reports)).toMatch(/semaphore l \(limit 2\): most inside at once +3 BROKEN/)
    expect(text(reports)).toMatch(/^BROKEN: 1 promise broken:\n {2}l: 3 semaphore holders/m)
    // One that ends as the third starts does not overlap it.
    const handover = summarize([
      ...hold('a', semaphore(2), '10', [0, 1, 3]),
      ...hold('b', semaphore(2), '11', [0, 2, 6]),
      ...hold('c', semaphore(2), '12', [0, 3, 6]),
    ])
    expect(handover.violations).toEqual([])
  })

  it('finds readers together and a writer alone, and the handovers between them', () => {
    const reports = [
      ...hold('r1', shared, '10', [0, 1, 5]),
      ...hold('r2', shared, '11', [0, 2, 6]),
      ...hold('w', exclusive, '20', [3, 6.5, 8]),
      // Asked while the writer held it: waits for it.
      ...hold('r3', shared, '21', [7, 8.5, 9]),
    ]
    const summary = summarize(reports)
    expect(summary.violations).toEqual([])
    expect(summary.shared).toEqual([
      {
        lock: 'l',
        reads: 3,
        writes: 1,
        peakReaders: 2,
        peakWithWriter: 1,
        // r3 waited for the writer, which released at 8.
        readerHandoverMs: { count: 1, p50: 0.5, p99: 0.5, max: 0.5 },
      },
    ])
    expect(summary.maxHolders).toBe(1)
    expect(summary.waits).toBe(2)
    // The writer waited for the readers in; the last of them released at 6.
    expect(summary.handoverMs).toEqual({ count: 1, p50: 0.5, p99: 0.5, max: 0.5 })
    expect(text(reports)).toMatch(/shared lock l: most readers at once +2 \(readers overlapped\)/)
    expect(text(reports)).toMatch(/shared lock l: most holders with a writer in +1 ok/)
    expect(text(reports)).toMatch(/^All checks kept\.$/m)
  })

  it('reports a writer in together with a reader, and readers that never overlapped as such', () => {
    const reports = [...hold('r1', shared, '10', [0, 1, 5]), ...hold('w', exclusive, '20', [3, 4, 8])]
    const summary = summarize(reports)
    expect(summary.shared[0]).toMatchObject({ peakReaders: 1, peakWithWriter: 2 })
    expect(summary.maxHolders).toBe(2)
    expect(summary.violations).toEqual([
      expect.stringMatching(/^l: 2 holders at once, one of them exclusive/),
    ])
    expect(text(reports)).toMatch(
      /shared lock l: most readers at once +1 \(readers did not overlap in this run\)/,
    )
    expect(text(reports)).toMatch(/shared lock l: most holders with a writer in +2 BROKEN/)
  })

  it('holds readers and writers to the fencing rule: above every earlier writer, and a writer above everyone', () => {
    const inOrder = [
      ...hold('r1', shared, '12', [0, 1, 3]),
      ...hold('r2', shared, '11', [0, 2, 4]),
      ...hold('w', exclusive, '20', [3, 5, 6]),
      ...hold('r3', shared, '21', [6, 7, 8]),
    ]
    expect(summarize(inOrder).violations).toEqual([])
    // A writer below a reader that came before it, and a reader below the writer before it.
    const writerBelow = [...hold('r1', shared, '12', [0, 1, 3]), ...hold('w', exclusive, '11', [2, 4, 5])]
    expect(summarize(writerBelow).fencingViolations).toEqual(['l: token 11 of w after 12 of r1'])
    const readerBelow = [...hold('w', exclusive, '20', [0, 1, 3]), ...hold('r', shared, '19', [2, 4, 5])]
    expect(summarize(readerBelow).fencingViolations).toEqual(['l: token 19 of r after 20 of w'])
    expect(kept(summarize(readerBelow))).toBe(false)
    expect(text(readerBelow)).toMatch(/^ {2}l: token 19 of r after 20 of w$/m)
  })
})

describe('npm run demo', () => {
  it('runs the scenario and keeps every promise, then stops everything and leaves no lock held', async () => {
    const namespace = await createNamespace('demo')
    const result = await runDemo(
      ['--kubeconfig', kubeconfigPath(), '--namespace', namespace, '--duration', '15', '--json'],
      400_000,
    )
    expect(result.code, result.stderr).toBe(0)
    const summary = JSON.parse(result.stdout) as {
      ok: boolean
      acquisitions: number
      waits: number
      immediateTimeouts: number
      expirations: number
      dropped: number
      maxHolders: number
      fencingViolations: string[]
      violations: string[]
      semaphores: SemaphoreSummary[]
      shared: SharedSummary[]
      errors: string[]
      handoverMs: { count: number; p50: number; p99: number }
      lockExpiredEvents: { lease: string; note: string; count: number }[]
      pids: number[]
    }
    const context = `${result.stdout}\n${result.stderr}`
    expect(summary.ok, context).toBe(true)
    expect(summary.maxHolders, context).toBe(1)
    expect(summary.fencingViolations, context).toEqual([])
    expect(summary.violations, context).toEqual([])
    expect(summary.errors, context).toEqual([])
    expect(summary.acquisitions, context).toBeGreaterThan(10)
    expect(summary.waits, context).toBeGreaterThan(0)
    expect(summary.handoverMs.count, context).toBeGreaterThan(0)
    expect(summary.handoverMs.p50, context).toBeLessThanOrEqual(summary.handoverMs.p99)
    expect(summary.immediateTimeouts, context).toBeGreaterThanOrEqual(1)
    expect(summary.expirations, context).toBeGreaterThanOrEqual(1)
    expect(summary.dropped, context).toBeGreaterThanOrEqual(1)
    expect(summary.lockExpiredEvents, context).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          lease: `${namespace}/export-statements`,
          note: expect.stringContaining('export-statements_'),
        }),
      ]),
    )

    // The partner API's semaphore: calls were made, and never more than its limit inside at once.
    const partner = summary.semaphores.find((s) => s.lock === PARTNER_API.lock)
    expect(partner, context).toMatchObject({ limit: PARTNER_API.limit })
    expect(partner?.calls, context).toBeGreaterThan(0)
    expect(partner?.peak, context).toBeGreaterThanOrEqual(1)
    expect(partner?.peak, context).toBeLessThanOrEqual(PARTNER_API.limit)
    // The account's readers and writer: both ran, and the writer was always alone. Whether two readers
    // overlapped depends on timing, so the summary reports it rather than the test asserting it.
    const account = summary.shared.find((s) => s.lock === REPORTED_ACCOUNT)
    expect(account?.reads, context).toBeGreaterThan(0)
    expect(account?.writes, context).toBeGreaterThan(0)
    expect(account?.peakReaders, context).toBeGreaterThanOrEqual(1)
    expect(account?.peakWithWriter, context).toBe(1)

    expect(summary.pids.length).toBeGreaterThan(1)
    expect(summary.pids.filter(runs)).toEqual([])
    expect(await heldLeases(namespace), context).toEqual([])
  }, 420_000)

  it('prints the text summary with the semaphore and shared-lock checks and the verdict', async () => {
    const namespace = await createNamespace('demo')
    const result = await runDemo(
      ['--kubeconfig', kubeconfigPath(), '--namespace', namespace, '--duration', '4'],
      400_000,
    )
    const context = `${result.stdout}\n${result.stderr}`
    expect(result.code, context).toBe(0)
    const summary = result.stdout.slice(result.stdout.indexOf('\nSummary: '))
    const row = (label: string) => new RegExp(`^ {2}${label.replace(/[()]/g, '\\$&')} +(.+)$`, 'm')
    const semaphore = `semaphore ${PARTNER_API.lock} (limit ${PARTNER_API.limit})`
    expect(summary, context).toMatch(row(`${semaphore}: calls`))
    const inside = row(`${semaphore}: most inside at once`).exec(summary)?.[1]
    expect(inside, context).toMatch(/^\d+ ok$/)
    expect(Number.parseInt(inside ?? '', 10), context).toBeLessThanOrEqual(PARTNER_API.limit)
    expect(summary, context).toMatch(row(`shared lock ${REPORTED_ACCOUNT}: reads / writes`))
    expect(summary, context).toMatch(row(`shared lock ${REPORTED_ACCOUNT}: most readers at once`))
    expect(
      row(`shared lock ${REPORTED_ACCOUNT}: most holders with a writer in`).exec(summary)?.[1],
      context,
    ).toMatch(/^[01] ok$/)
    expect(summary, context).toMatch(/^All checks kept\.$/m)
    expect(summary, context).not.toMatch(/BROKEN/)
    expect(await heldLeases(namespace), context).toEqual([])
  }, 420_000)

  it('ends the run early on SIGINT, still prints the summary, and stops everything it started', async () => {
    const namespace = await createNamespace('demo')
    let interrupted = false
    const result = await runDemo(
      ['--kubeconfig', kubeconfigPath(), '--namespace', namespace, '--duration', '600', '--json'],
      400_000,
      (child) => {
        // Interrupt once the live view has counted an acquisition.
        child.stderr?.on('data', (chunk: Buffer | string) => {
          if (!interrupted && /acquisitions [1-9]/.test(String(chunk))) {
            interrupted = true
            child.kill('SIGINT')
          }
        })
      },
    )
    expect(interrupted, result.stderr).toBe(true)
    expect(result.code, result.stderr).toBe(0)
    const summary = JSON.parse(result.stdout) as {
      ok: boolean
      seconds: number
      acquisitions: number
      maxHolders: number
      violations: string[]
      pids: number[]
    }
    expect(summary.seconds).toBeLessThan(600)
    expect(summary.acquisitions).toBeGreaterThan(0)
    // Stopped early, the run may have no exclusive hold at all (0): never more than one holder with it.
    expect(summary.maxHolders).toBeLessThanOrEqual(1)
    expect(summary.violations, result.stdout).toEqual([])
    expect(summary.ok).toBe(true)
    expect(summary.pids.length).toBeGreaterThan(1)
    expect(summary.pids.filter(runs)).toEqual([])
    expect(await heldLeases(namespace)).toEqual([])
  }, 420_000)
})
