/**
 * `locks release` on an operator machine whose wall clock runs 40 s ahead (Debian's `faketime`, with
 * the monotonic clock left alone): the lease's renewTime looks long past, yet the CLI must judge expiry
 * on its own monotonic clock and never free the lock of a holder that is still valid.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import {
  formatMicroTime,
  LOCK_NAME_ANNOTATION,
  leaseNameFor,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
} from '../../sdk/internal.ts'
import { CliProcess, type CliResult } from './cli-helpers.ts'
import { apiRequest, createNamespace, kubeconfigPath, waitFor } from './support.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const MAIN = join(ROOT, 'cli', 'main.ts')
const SKEW_MS = 40_000
// Only the wall clock is faked: performance.now() and timers keep the real monotonic clock.
const FAKETIME_ENV = { FAKETIME_DONT_FAKE_MONOTONIC: '1' }

let namespace: string

beforeEach(async () => {
  namespace = await createNamespace('cli-release-clock')
})

interface Lease {
  metadata: { resourceVersion: string; uid: string }
  spec: { holderIdentity?: string }
}

async function read(lockName: string): Promise<Lease> {
  const response = await apiRequest(
    'GET',
    `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${leaseNameFor(lockName)}`,
  )
  expect(response.status).toBe(200)
  return response.body as unknown as Lease
}

/** The CLI under `faketime -f +40s`, as an operator with a fast clock runs it. */
class SkewedCli {
  readonly child: ChildProcess
  readonly done: Promise<CliResult>
  stdout = ''
  stderr = ''

  constructor(args: readonly string[]) {
    const [command = '', ...rest] = args
    this.child = spawn(
      'faketime',
      [
        '-f',
        `+${SKEW_MS / 1000}s`,
        process.execPath,
        MAIN,
        command,
        '--kubeconfig',
        kubeconfigPath(),
        ...rest,
      ],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', ...FAKETIME_ENV },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk
    })
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk
    })
    this.done = new Promise((resolve) => {
      this.child.once('close', (code, signal) =>
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr }),
      )
    })
    onTestFinished(async () => {
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
      await this.done
    })
  }

  /**
   * Sends `signal` to the CLI itself, as Ctrl-C in a terminal would reach it: faketime runs it as its
   * child and does not pass signals on, but exits with its status.
   */
  interrupt(signal: NodeJS.Signals = 'SIGINT'): void {
    const pid = this.child.pid
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)
    expect(children).toHaveLength(1)
    process.kill(Number(children[0]), signal)
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null
  }
}

describe('locks release with the wall clock 40 s ahead', () => {
  it('fakes the wall clock of Node and nothing else', () => {
    const script = 'console.log(JSON.stringify([Date.now(), performance.now()]))'
    const before = Date.now()
    const output = execFileSync('faketime', ['-f', '+40s', process.execPath, '-e', script], {
      env: { PATH: process.env.PATH ?? '', ...FAKETIME_ENV },
      encoding: 'utf8',
    })
    const [wall, monotonic] = JSON.parse(output) as [number, number]
    expect(wall - before).toBeGreaterThan(SKEW_MS - 5_000)
    expect(wall - Date.now()).toBeLessThan(SKEW_MS + 5_000)
    // A fresh process: its monotonic clock starts near zero, not 40 s in.
    expect(monotonic).toBeLessThan(SKEW_MS / 2)
  })

  it('never frees the lock of a holder in another process that keeps renewing it', async () => {
    const holder = new CliProcess([
      'run',
      'nightly',
      '-n',
      namespace,
      '--expires',
      '3',
      '--renew',
      '--',
      'sh',
      '-c',
      'echo started; exec sleep 60',
    ])
    await holder.waitForOutput('the holder to start its command', (stdout) => stdout.includes('started'))
    const held = await read('nightly')
    const identity = held.spec.holderIdentity
    expect(identity).toBeDefined()

    const release = new SkewedCli(['release', 'nightly', '-n', namespace])
    // Renewals change the resourceVersion; anything else (the holder cleared or replaced) is a wrongful
    // release. Wait until the holder has renewed twice while release ran, checking every read.
    const seen = new Set<string>([held.metadata.resourceVersion])
    let wrong: Lease | undefined
    await waitFor(
      'the holder to renew twice while release waits',
      async () => {
        const lease = await read('nightly')
        if (lease.metadata.uid !== held.metadata.uid || lease.spec.holderIdentity !== identity) wrong = lease
        seen.add(lease.metadata.resourceVersion)
        return wrong !== undefined || seen.size >= 3
      },
      { timeoutMs: 15_000 },
    )
    expect(
      wrong?.spec.holderIdentity,
      `release freed a valid lock; release said: ${release.stdout}${release.stderr}`,
    ).toBeUndefined()
    expect(wrong).toBeUndefined()
    expect(release.exited, release.stdout + release.stderr).toBe(false)
    expect(release.stderr).toMatch(
      /is held by `[^`]+`: waiting until this machine has seen its lease unchanged/,
    )
    release.interrupt('SIGINT')
    const interrupted = await release.done
    expect(interrupted.code).toBe(130)
    expect((await read('nightly')).spec.holderIdentity).toBe(identity)
    expect(holder.child.exitCode).toBeNull()

    // With a deadline, it gives up and says why; the holder still holds its lock.
    const bounded = await new SkewedCli(['release', 'nightly', '-n', namespace, '--timeout', '4']).done
    expect(bounded.code).toBe(1)
    expect(bounded.stdout).toBe('')
    expect(bounded.stderr).toMatch(
      /\nerror: lock `nightly` in namespace `\S+` is still held by `[^`]+` after --timeout 4 s .*nothing was changed: .*--force/,
    )
    expect((await read('nightly')).spec.holderIdentity).toBe(identity)
    expect(holder.child.exitCode).toBeNull()
    // The holder ran undisturbed all along; it ends (and frees its lock) when told to.
    holder.child.kill('SIGTERM')
    expect((await holder.done).code).toBe(128 + 15)
  })

  it('frees a lock nobody renews only once its own clock has seen it unchanged for duration plus grace', async () => {
    // Renewed just now by the holder's clock; by the skewed clock, 40 s ago.
    const renewTime = formatMicroTime(Date.now())
    const created = await apiRequest('POST', `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: 'stale',
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
        annotations: { [LOCK_NAME_ANNOTATION]: 'stale' },
      },
      spec: { holderIdentity: 'gone-1_1_ef', leaseDurationSeconds: 3, acquireTime: renewTime, renewTime },
    })
    expect(created.status).toBe(201)
    const started = performance.now()
    const release = new SkewedCli(['release', 'stale', '-n', namespace, '--grace', '1'])
    const result = await release.done
    const elapsed = performance.now() - started
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(
      /^lock "stale" in namespace `\S+` released: its lease was seen unchanged for 4 s \(duration 3 s \+ grace 1 s\) \(lease stale, resourceVersion \d+ -> \d+\)\n$/,
    )
    expect(elapsed).toBeGreaterThanOrEqual(4_000)
    expect((await read('stale')).spec.holderIdentity).toBeUndefined()
  })
})
