import { type ChildProcess, spawn as nodeSpawn, type SpawnOptions } from 'node:child_process'
import { constants } from 'node:os'
import { DEFAULTS, defaultSafetyMargin, setClampedTimeout } from '../sdk/index.ts'
import { UsageError } from './errors.ts'
import { ExitCode } from './exit-codes.ts'

/** Environment variables `locks run` gives the command. */
export const RUN_ENV = Object.freeze({
  /** The lock name as given. */
  name: 'KUBE_LOCKS_NAME',
  /** The namespace of the lease. */
  namespace: 'KUBE_LOCKS_NAMESPACE',
  /** The Lease object's name. */
  lease: 'KUBE_LOCKS_LEASE',
  /** This acquisition's holder identity. */
  holder: 'KUBE_LOCKS_HOLDER',
  /**
   * The fencing token: a decimal integer that grows with every acquisition of the lock. Compare as a
   * big integer; it may exceed 2^53.
   */
  fencingToken: 'KUBE_LOCKS_FENCING_TOKEN',
})

/** Signals passed on to the command's process group while it runs. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = Object.freeze([
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
])

/** What `run` needs of a held lock (the SDK's lock handle). */
export interface HeldLock {
  readonly name: string
  readonly namespace: string
  readonly leaseName: string
  readonly holder: string
  readonly fencingToken: string
  /** Aborts when the lock is lost (or released). */
  readonly signal: AbortSignal
  release(): Promise<void>
}

export interface SuperviseOptions {
  readonly command: string
  readonly args: readonly string[]
  readonly env: NodeJS.ProcessEnv
  /**
   * Milliseconds between SIGTERM and SIGKILL when the lock is lost. The lock must signal its loss at
   * least this long before anyone else can take it (see {@link runTiming}), so that SIGKILL lands no
   * later than that.
   */
  readonly killAfterMs: number
  /** Where the command's stdio goes. @default 'inherit' */
  readonly stdio?: SpawnOptions['stdio']
  /** Emits the signals to forward; `process` in the CLI. */
  readonly signals: Pick<NodeJS.Process, 'on' | 'off'>
  /** One-line diagnostics. */
  readonly warn: (line: string) => void
  /** Called once the command runs, with its process. */
  readonly onStart?: ((child: ChildProcess) => void) | undefined
  readonly spawn?: typeof nodeSpawn
  /** Sends `signal` to process group `pid`; false once the group is gone. Tests inject a fake. */
  readonly killGroup?: ((pid: number, signal: NodeJS.Signals | 0) => boolean) | undefined
}

/**
 * Seconds between SIGTERM and SIGKILL when `--kill-after` is not given: 10, or a quarter of `expires`
 * if that is less, so that short locks still leave the command most of their time.
 */
export const KILL_AFTER_DEFAULTS = Object.freeze({ seconds: 10, shareOfExpires: 0.25 })

export interface RunTiming {
  readonly expires: number
  /** Seconds between SIGTERM and SIGKILL. */
  readonly killAfter: number
  /** The SDK's default margin for `expires`. */
  readonly margin: number
  /**
   * What `run` asks the SDK for: the default margin plus `killAfter`. The lock's signal — and with it
   * SIGTERM — then fires `killAfter` before the point where the default margin would, so SIGKILL lands
   * no later than `sendTime + expires − margin`, before anyone else can take the lock.
   */
  readonly safetyMargin: number
}

/**
 * The timing of `locks run` for `--expires` and `--kill-after` (each `undefined` when not given).
 * Throws a {@link UsageError} when the kill-after and the margin do not fit inside `expires`.
 */
export function runTiming(options: {
  expires?: number | undefined
  killAfter?: number | undefined
}): RunTiming {
  const expires = options.expires ?? DEFAULTS.expires
  const margin = defaultSafetyMargin(expires)
  const killAfter =
    options.killAfter ?? Math.min(KILL_AFTER_DEFAULTS.seconds, expires * KILL_AFTER_DEFAULTS.shareOfExpires)
  if (killAfter + margin >= expires) {
    const fmt = (n: number) => String(Number(n.toFixed(3)))
    throw new UsageError(
      `--kill-after ${fmt(killAfter)} s plus the safety margin ${fmt(margin)} s must be less than --expires ${fmt(expires)} s, so that the command is killed before anyone else can take the lock: pass --kill-after below ${fmt(expires - margin)}, or --expires above ${fmt(expiresFitting(killAfter))}`,
    )
  }
  return Object.freeze({ expires, killAfter, margin, safetyMargin: margin + killAfter })
}

/** The `expires` above which `killAfter` plus the default margin fits (for the usage error). */
function expiresFitting(killAfter: number): number {
  // The boundary solves e = killAfter + margin(e); the margin grows more slowly than e, so iterating
  // from killAfter converges to it from below.
  let expires = killAfter
  for (let i = 0; i < 60; i++) expires = killAfter + defaultSafetyMargin(expires)
  return expires
}

export function lockEnvironment(lock: HeldLock, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    ...env,
    [RUN_ENV.name]: lock.name,
    [RUN_ENV.namespace]: lock.namespace,
    [RUN_ENV.lease]: lock.leaseName,
    [RUN_ENV.holder]: lock.holder,
    [RUN_ENV.fencingToken]: lock.fencingToken,
  }
}

/** The exit status a shell would report for a process that ended this way. */
export function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code
  const number = signal === null ? undefined : constants.signals[signal]
  return ExitCode.signalBase + (number ?? 0)
}

function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal)
    return true
  } catch {
    // ESRCH: the group is gone.
    return false
  }
}

/**
 * Runs the command in a process group of its own while `lock` is held, and resolves with the exit code
 * for `locks run`: the command's own, or {@link ExitCode.lost} if the lock was lost while it ran (then
 * the group got SIGTERM and, if anything of it was left after `killAfterMs`, SIGKILL). The lock is released
 * when the command ends.
 */
export async function supervise(lock: HeldLock, options: SuperviseOptions): Promise<number> {
  const spawn = options.spawn ?? nodeSpawn
  const killGroup = options.killGroup ?? signalGroup
  let child: ChildProcess
  try {
    child = spawn(options.command, [...options.args], {
      detached: true,
      stdio: options.stdio ?? 'inherit',
      env: lockEnvironment(lock, options.env),
    })
  } catch (error) {
    await lock.release()
    return startFailure(error, options)
  }

  let lost = false
  let killTimer: ReturnType<typeof setTimeout> | undefined
  let killed: Promise<void> | undefined
  const forward = (signal: NodeJS.Signals) => {
    if (child.pid !== undefined) killGroup(child.pid, signal)
  }
  const onLost = () => {
    // Released by us once the command ended: not a loss.
    if (child.exitCode !== null || child.signalCode !== null) return
    lost = true
    const reason =
      lock.signal.reason instanceof Error ? lock.signal.reason.message : String(lock.signal.reason)
    const pid = child.pid
    options.warn(
      `${reason}; stopping the command (process group ${pid}) with SIGTERM, then SIGKILL after ${options.killAfterMs / 1000} s`,
    )
    if (pid === undefined) return
    killGroup(pid, 'SIGTERM')
    // The lock signalled its loss at least killAfter before anyone else may take it (an early loss, a
    // failed renewal, only sooner): SIGKILL at killAfter from now lands no later than that.
    killed = new Promise((resolve) => {
      killTimer = setClampedTimeout(() => {
        killTimer = undefined
        killGroup(pid, 'SIGKILL')
        resolve()
      }, options.killAfterMs)
    })
  }

  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | { error: unknown }>(
    (resolve) => {
      child.once('error', (error) => resolve({ error }))
      child.once('exit', (code, signal) => resolve({ code, signal }))
    },
  )
  for (const signal of FORWARDED_SIGNALS) options.signals.on(signal, forward)
  if (child.pid !== undefined) options.onStart?.(child)
  lock.signal.addEventListener('abort', onLost, { once: true })
  if (lock.signal.aborted) onLost()

  try {
    const result = await ended
    if ('error' in result) {
      return startFailure(result.error, options)
    }
    if (lost) {
      // The leader is gone; anything left in its group still runs without the lock.
      if (child.pid !== undefined && killGroup(child.pid, 0)) await killed
      return ExitCode.lost
    }
    return exitStatus(result.code, result.signal)
  } finally {
    for (const signal of FORWARDED_SIGNALS) options.signals.off(signal, forward)
    lock.signal.removeEventListener('abort', onLost)
    if (killTimer !== undefined) {
      clearTimeout(killTimer)
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL')
    }
    await lock.release()
  }
}

function startFailure(error: unknown, options: SuperviseOptions): number {
  const code = (error as { code?: unknown } | null)?.code
  if (code === 'ENOENT') {
    options.warn(`command \`${options.command}\` not found: check the name and PATH`)
    return ExitCode.notFound
  }
  const detail = error instanceof Error ? error.message : String(error)
  options.warn(`cannot start \`${options.command}\` (${detail}): check that it is an executable file`)
  return ExitCode.cannotExecute
}
