import type { ChildProcess } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createLocks,
  createMemoryLeaseStore,
  DEFAULTS,
  defaultSafetyMargin,
  LockUnavailableError,
} from '../sdk/internal.ts'
import { UsageError } from './errors.ts'
import { ExitCode } from './exit-codes.ts'
import {
  exitStatus,
  FORWARDED_SIGNALS,
  type HeldLock,
  RUN_ENV,
  runTiming,
  type SuperviseOptions,
  supervise,
} from './run.ts'
import { LeaseServer, runLocks } from './testing/lease-server.ts'
import { holderJson, lockJson } from './testing/leases.ts'

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
    killAfterMs: 5_000,
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
    const { opts, child } = options(script, { killAfterMs: 300 })
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
    const { opts, child } = options(script, { killAfterMs: 300 })
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

describe('runTiming', () => {
  it.each([
    // expires, --kill-after, → kill-after, SDK safety margin asked for
    [undefined, undefined, 5, 2 + 5],
    [20, 10, 10, 2 + 10],
    [5, undefined, 1.25, 0.5 + 1.25],
    [120, undefined, 10, 2 + 10],
    [5, 0, 0, 0.5],
  ])(
    'expires %s, --kill-after %s: SIGKILL after %s s, margin %s s',
    (expires, killAfter, after, safetyMargin) => {
      const timing = runTiming({ expires, killAfter })
      expect(timing.killAfter).toBe(after)
      expect(timing.safetyMargin).toBeCloseTo(safetyMargin, 9)
      // The margin is the SDK's own default for these expires.
      expect(timing.margin).toBe(defaultSafetyMargin(expires ?? DEFAULTS.expires))
      expect(timing.safetyMargin - timing.killAfter).toBeCloseTo(timing.margin, 9)
    },
  )

  it('refuses a kill-after that does not fit inside expires with the margin, naming both and the fix', () => {
    expect(() => runTiming({ expires: 5, killAfter: 10 })).toThrow(UsageError)
    expect(() => runTiming({ expires: 5, killAfter: 10 })).toThrow(
      '--kill-after 10 s plus the safety margin 0.5 s must be less than --expires 5 s, so that the command is killed before anyone else can take the lock: pass --kill-after below 4.5, or --expires above 11.111',
    )
    expect(() => runTiming({ expires: 20, killAfter: 18 })).toThrow(
      'pass --kill-after below 18, or --expires above 20',
    )
    // The smallest expires it suggests is indeed enough.
    expect(runTiming({ expires: 11.112, killAfter: 10 }).safetyMargin).toBeLessThan(11.112)
  })
})

describe('supervise with an SDK lock: SIGKILL lands no later than the lock could pass on', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  /** A command that ignores SIGTERM; only SIGKILL ends it. Records when each signal reached it. */
  function stubbornChild() {
    const child = Object.assign(new EventEmitter(), {
      pid: 4242,
      exitCode: null as number | null,
      signalCode: null as NodeJS.Signals | null,
    })
    const received: { signal: NodeJS.Signals | 0; at: number }[] = []
    const killGroup = (pid: number, signal: NodeJS.Signals | 0) => {
      expect(pid).toBe(4242)
      if (child.signalCode !== null) return false
      if (signal !== 0) received.push({ signal, at: Date.now() })
      if (signal === 'SIGKILL') {
        child.signalCode = 'SIGKILL'
        queueMicrotask(() => child.emit('exit', null, 'SIGKILL'))
      }
      return true
    }
    const spawn = (() => child) as unknown as SuperviseOptions['spawn']
    return { received, killGroup, spawn }
  }

  async function holdAndSupervise(flags: { expires: number; killAfter?: number; renew?: boolean }) {
    vi.useFakeTimers()
    const start = Date.now()
    const store = createMemoryLeaseStore()
    const clock = { now: () => Date.now() - start, wallNow: () => Date.now() }
    const locks = createLocks({ store, clock, namespace: 'shop', identity: 'me', retryInterval: 0.2 })
    const timing = runTiming(flags)
    const lock = await locks.acquire('job', {
      expires: timing.expires,
      renew: flags.renew === true,
      timeout: 0,
      safetyMargin: timing.safetyMargin,
    })
    const child = stubbornChild()
    const warnings: string[] = []
    const code = supervise(lock, {
      command: 'job',
      args: [],
      env: {},
      killAfterMs: timing.killAfter * 1000,
      signals: new EventEmitter() as unknown as SuperviseOptions['signals'],
      warn: (line) => warnings.push(line),
      spawn: child.spawn,
      killGroup: child.killGroup,
    })
    return {
      store,
      clock,
      timing,
      code,
      warnings,
      received: child.received,
      start,
      close: () => locks.close(),
    }
  }

  it('without renewal: SIGTERM kill-after before the lock’s end, SIGKILL at it', async () => {
    const run = await holdAndSupervise({ expires: 5 })
    // The acquiring write was sent at 0 on the monotonic clock; others may take the lock after 5 s minus
    // the default margin (their own observation adds the expiry grace on top).
    const end = (run.timing.expires - run.timing.margin) * 1000
    await vi.advanceTimersByTimeAsync(end)
    await expect(run.code).resolves.toBe(ExitCode.lost)
    expect(run.received.map(({ signal, at }) => [signal, at - run.start])).toEqual([
      ['SIGTERM', end - 1_250],
      ['SIGKILL', end],
    ])
    expect(run.warnings[0]).toMatch(/SIGTERM, then SIGKILL after 1.25 s$/)
    await run.close()
  })

  it('with the default expires and kill-after: SIGKILL at 18 s, where SIGTERM used to be sent', async () => {
    const run = await holdAndSupervise({ expires: DEFAULTS.expires })
    await vi.advanceTimersByTimeAsync(20_000)
    await expect(run.code).resolves.toBe(ExitCode.lost)
    expect(run.received.map(({ signal, at }) => [signal, at - run.start])).toEqual([
      ['SIGTERM', 13_000],
      ['SIGKILL', 18_000],
    ])
    await run.close()
  })

  it('when a renewal fails early: SIGKILL kill-after later, still before the lock’s end', async () => {
    const run = await holdAndSupervise({ expires: 9, killAfter: 2, renew: true })
    // The first renewal's answer is lost: the outcome is unknown, and the lock is lost at once.
    run.store.failNext(
      'update',
      () => new LockUnavailableError({ server: 'memory', problem: 'reset', outcomeUnknown: true }),
      { phase: 'after' },
    )
    await vi.advanceTimersByTimeAsync(20_000)
    await expect(run.code).resolves.toBe(ExitCode.lost)
    const renewals = run.store.calls.filter((call) => call.operation === 'update')
    expect(renewals.length).toBeGreaterThan(0)
    const [term, kill] = run.received
    expect(term?.signal).toBe('SIGTERM')
    expect(kill?.signal).toBe('SIGKILL')
    expect((kill?.at ?? 0) - (term?.at ?? 0)).toBe(2_000)
    // Lost at the first renewal, well before its end counted from the acquisition sent at 0.
    expect((term?.at ?? 0) - run.start).toBeLessThan(4_000)
    expect((kill?.at ?? Number.POSITIVE_INFINITY) - run.start).toBeLessThanOrEqual(
      (9 - run.timing.margin) * 1000,
    )
    await run.close()
  })

  it('when renewals hang (the API server cut off): SIGKILL at the end of the last successful renewal', async () => {
    const run = await holdAndSupervise({ expires: 6, killAfter: 1, renew: true })
    // Let the first renewal through (every expires / 3 = 2 s), then hold every later one unanswered.
    await vi.advanceTimersByTimeAsync(2_000)
    expect(run.store.calls.filter((call) => call.operation === 'update')).toHaveLength(1)
    const renewedAt = Date.now() - run.start
    run.store.pause('update')
    await vi.advanceTimersByTimeAsync(30_000)
    await expect(run.code).resolves.toBe(ExitCode.lost)
    const kill = run.received.find(({ signal }) => signal === 'SIGKILL')
    expect((kill?.at ?? Number.POSITIVE_INFINITY) - run.start).toBeLessThanOrEqual(
      renewedAt + (6 - run.timing.margin) * 1000,
    )
    await run.close()
  })
})

describe('locks run --limit and --shared', () => {
  it('exits with the mode-conflict code, and runs nothing, when the name is in use in another mode', async () => {
    const api = await new LeaseServer([
      lockJson('partner-api', { holder: undefined, mode: 'shared' }),
      holderJson('partner-api', 'aaaa', { mode: 'shared', renewTime: new Date().toISOString() }),
    ]).start()
    try {
      api.answerWrite = (method, _path, body) => {
        const lease = body as { metadata?: Record<string, unknown> }
        if (method === 'POST') {
          return {
            status: 201,
            body: { ...lease, metadata: { ...lease.metadata, uid: 'u-new', resourceVersion: '50' } },
          }
        }
        return { status: 200, body: { kind: 'Status', status: 'Success' } }
      }
      const marker = join(mkdtempSync(join(tmpdir(), 'locks-run-')), 'ran')
      const result = await runLocks(
        ['run', 'partner-api', '--limit', '3', '--timeout', '0', '--', 'touch', marker],
        api.kubeconfig(),
        { now: Date.now() },
      )
      expect(result.stdout).toBe('')
      expect(result.stderr).toBe(
        'error: lock `partner-api` in namespace `shop` is in use as a shared lock, but this run asked for a semaphore (limit 3); the command did not run: every holder of one name must give the same --limit (or all --shared), so use the same flags everywhere (see `locks get partner-api`), or another lock name\n',
      )
      expect(result.code).toBe(ExitCode.modeConflict)
      expect(() => readFileSync(marker)).toThrow()
      // It announced itself with a record of its own, and took it back.
      expect(api.writes.map((write) => write.split(' ')[0])).toEqual(['POST', 'DELETE'])
    } finally {
      await api.close()
    }
  })
})
