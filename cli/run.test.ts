import type { ChildProcess } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ExitCode } from './exit-codes.ts'
import {
  exitStatus,
  FORWARDED_SIGNALS,
  type HeldLock,
  RUN_ENV,
  type SuperviseOptions,
  supervise,
} from './run.ts'

function fakeLock() {
  const controller = new AbortController()
  const lock = {
    name: 'orders/EU',
    namespace: 'shop',
    leaseName: 'orders-eu--x',
    holder: 'me_1_a',
    fencingToken: '9007199254740993',
    signal: controller.signal,
    release: vi.fn(async () => {
      if (!controller.signal.aborted) controller.abort(new DOMException('released', 'AbortError'))
    }),
  } satisfies HeldLock
  return { lock, lose: (message: string) => controller.abort(new Error(message)) }
}

const spawned: ChildProcess[] = []
afterEach(() => {
  for (const child of spawned.splice(0)) {
    if (child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {}
    }
  }
})

function options(script: string, overrides: Partial<SuperviseOptions> = {}) {
  const signals = new EventEmitter()
  const warnings: string[] = []
  let started: (child: ChildProcess) => void = () => {}
  const child = new Promise<ChildProcess>((resolve) => {
    started = resolve
  })
  const opts: SuperviseOptions = {
    command: process.execPath,
    args: ['-e', script],
    env: { PATH: process.env.PATH },
    graceMs: 5_000,
    stdio: ['ignore', 'pipe', 'inherit'],
    signals: signals as unknown as SuperviseOptions['signals'],
    warn: (line) => warnings.push(line),
    onStart: (c) => {
      spawned.push(c)
      started(c)
    },
    ...overrides,
  }
  return { opts, signals, warnings, child }
}

async function firstLine(child: ChildProcess): Promise<string> {
  const stdout = child.stdout
  if (!stdout) throw new Error('no stdout')
  stdout.setEncoding('utf8')
  let text = ''
  while (!text.includes('\n')) {
    const [chunk] = (await once(stdout, 'data')) as [string]
    text += chunk
  }
  return text.split('\n')[0] as string
}

/** Whether a process still runs: a zombie waiting for its (re)parent to reap it does not. */
function runs(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

/** SIGKILL is delivered asynchronously: wait, with a deadline, for the process to stop running. */
async function stops(pid: number, timeoutMs = 2_000): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (runs(pid)) {
    if (performance.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  return true
}

describe('supervise', () => {
  it("returns the command's exit code and releases the lock", async () => {
    const { lock } = fakeLock()
    const { opts } = options('process.exit(7)')
    await expect(supervise(lock, opts)).resolves.toBe(7)
    expect(lock.release).toHaveBeenCalledTimes(1)
  })

  it('passes the lock to the command in the environment', async () => {
    const { lock } = fakeLock()
    const names = JSON.stringify(Object.values(RUN_ENV))
    const { opts, child } = options(`console.log(JSON.stringify(${names}.map((n) => process.env[n])))`)
    const code = supervise(lock, opts)
    const line = await firstLine(await child)
    await expect(code).resolves.toBe(0)
    expect(JSON.parse(line)).toEqual(['orders/EU', 'shop', 'orders-eu--x', 'me_1_a', '9007199254740993'])
  })

  it('reports death by signal N as 128 + N', async () => {
    const { lock } = fakeLock()
    const { opts } = options("process.kill(process.pid, 'SIGKILL')")
    await expect(supervise(lock, opts)).resolves.toBe(128 + 9)
    expect(exitStatus(null, 'SIGTERM')).toBe(143)
    expect(exitStatus(3, null)).toBe(3)
  })

  it('forwards signals to the process group', async () => {
    const { lock } = fakeLock()
    const { opts, signals, child } = options(
      "process.on('SIGUSR1', () => { console.log('late'); process.exit(42) }); console.log('ready'); setInterval(() => {}, 1000)",
    )
    const code = supervise(lock, opts)
    expect(await firstLine(await child)).toBe('ready')
    expect(FORWARDED_SIGNALS).toContain('SIGUSR1')
    signals.emit('SIGUSR1', 'SIGUSR1')
    await expect(code).resolves.toBe(42)
    expect(signals.listenerCount('SIGUSR1')).toBe(0)
  })

  it('terminates the command with SIGTERM when the lock is lost, and exits with the lost code', async () => {
    const { lock, lose } = fakeLock()
    const { opts, warnings, child } = options("console.log('ready'); setInterval(() => {}, 1000)")
    const code = supervise(lock, opts)
    const running = await child
    expect(await firstLine(running)).toBe('ready')
    lose('lock `orders/EU` is lost: it expired')
    await expect(code).resolves.toBe(ExitCode.lost)
    expect(running.signalCode).toBe('SIGTERM')
    expect(warnings).toEqual([
      `lock \`orders/EU\` is lost: it expired; stopping the command (process group ${running.pid}) with SIGTERM, then SIGKILL after 5 s`,
    ])
    expect(lock.release).toHaveBeenCalled()
  })

  it('kills what ignores SIGTERM after the grace, including the rest of the group', async () => {
    const { lock, lose } = fakeLock()
    // The leader ignores SIGTERM and has a child of its own that ignores it as well.
    const script = `
      const { spawn } = require('node:child_process')
      process.on('SIGTERM', () => {})
      const grandchild = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { stdio: 'ignore' })
      console.log(String(grandchild.pid))
      setInterval(() => {}, 1000)
    `
    const { opts, child } = options(script, { graceMs: 300 })
    const code = supervise(lock, opts)
    const running = await child
    const grandchild = Number(await firstLine(running))
    const lostAt = performance.now()
    lose('lost')
    await expect(code).resolves.toBe(ExitCode.lost)
    expect(performance.now() - lostAt).toBeGreaterThanOrEqual(290)
    expect(running.signalCode).toBe('SIGKILL')
    await expect(stops(grandchild)).resolves.toBe(true)
  })

  it('waits out the grace for group members that outlive the leader', async () => {
    const { lock, lose } = fakeLock()
    const script = `
      const { spawn } = require('node:child_process')
      const grandchild = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { stdio: 'ignore' })
      console.log(String(grandchild.pid))
      setInterval(() => {}, 1000)
    `
    const { opts, child } = options(script, { graceMs: 300 })
    const code = supervise(lock, opts)
    const running = await child
    const grandchild = Number(await firstLine(running))
    lose('lost')
    await expect(code).resolves.toBe(ExitCode.lost)
    expect(running.signalCode).toBe('SIGTERM')
    await expect(stops(grandchild)).resolves.toBe(true)
  })

  it('returns 127 for a command that does not exist and 126 for one that cannot run', async () => {
    const { lock } = fakeLock()
    const missing = options('', { command: 'no-such-command-kube-locks', args: [] })
    await expect(supervise(lock, missing.opts)).resolves.toBe(ExitCode.notFound)
    expect(missing.warnings[0]).toMatch(/not found/)
    expect(lock.release).toHaveBeenCalled()

    const dir = mkdtempSync(join(tmpdir(), 'locks-run-'))
    try {
      const file = join(dir, 'script')
      writeFileSync(file, '#!/bin/sh\nexit 0\n')
      chmodSync(file, 0o644)
      const denied = options('', { command: file, args: [] })
      await expect(supervise(fakeLock().lock, denied.opts)).resolves.toBe(ExitCode.cannotExecute)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
