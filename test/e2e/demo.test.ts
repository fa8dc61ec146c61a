/**
 * `npm run demo` against the real API server: the scenario's processes take real locks next to the
 * controller, and the summary built from their reports must show the promises kept: never two holders
 * of one lock, a `timeout: 0` caller refused at once, an overrun that ends in the holder's signal and
 * the controller's `LockExpired` Event. The demo must leave no process running and no lock held.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { Report } from '../../demo/protocol.ts'
import { summarize, type Tagged } from '../../demo/timeline.ts'
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
  const acquired = (instance: string, holder: string, token: string, requestedAt: number, start: number) =>
    at(instance, { type: 'acquired', lock: 'l', holder, token, requestedAt, at: start, expires: 10 })
  const ended = (instance: string, holder: string, end: number, how: 'released' | 'expired' = 'released') =>
    at(instance, { type: 'ended', lock: 'l', holder, how, at: end })

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
      handoverMs: { count: 1, p50: 1, p99: 1 },
    })
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
    expect(summarize([acquired('c', 'c1', '30', 8, 9), acquired('d', 'd1', '31', 8, 9_000)]).maxHolders).toBe(
      2,
    )
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
      errors: string[]
      handoverMs: { count: number; p50: number; p99: number }
      lockExpiredEvents: { lease: string; note: string; count: number }[]
      pids: number[]
    }
    const context = `${result.stdout}\n${result.stderr}`
    expect(summary.ok, context).toBe(true)
    expect(summary.maxHolders, context).toBe(1)
    expect(summary.fencingViolations, context).toEqual([])
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

    expect(summary.pids.length).toBeGreaterThan(1)
    expect(summary.pids.filter(runs)).toEqual([])
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
      seconds: number
      acquisitions: number
      maxHolders: number
      pids: number[]
    }
    expect(summary.seconds).toBeLessThan(600)
    expect(summary.acquisitions).toBeGreaterThan(0)
    expect(summary.maxHolders).toBe(1)
    expect(summary.pids.length).toBeGreaterThan(1)
    expect(summary.pids.filter(runs)).toEqual([])
    expect(await heldLeases(namespace)).toEqual([])
  }, 420_000)
})
