import { type ChildProcess, spawn as nodeSpawn, type SpawnOptions } from 'node:child_process'
import { constants } from 'node:os'
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
  /** Milliseconds between SIGTERM and SIGKILL when the lock is lost. */
  readonly graceMs: number
  /** Where the command's stdio goes. @default 'inherit' */
  readonly stdio?: SpawnOptions['stdio']
  /** Emits the signals to forward; `process` in the CLI. */
  readonly signals: Pick<NodeJS.Process, 'on' | 'off'>
  /** One-line diagnostics. */
  readonly warn: (line: string) => void
  /** Called once the command runs, with its process. */
  readonly onStart?: ((child: ChildProcess) => void) | undefined
  readonly spawn?: typeof nodeSpawn
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

function killGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
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
 * the group got SIGTERM and, if anything of it was left after the grace, SIGKILL). The lock is released
 * when the command ends.
 */
export async function supervise(lock: HeldLock, options: SuperviseOptions): Promise<number> {
  const spawn = options.spawn ?? nodeSpawn
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
  let graceTimer: ReturnType<typeof setTimeout> | undefined
  let graceOver: Promise<void> | undefined
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
      `${reason}; stopping the command (process group ${pid}) with SIGTERM, then SIGKILL after ${options.graceMs / 1000} s`,
    )
    if (pid === undefined) return
    killGroup(pid, 'SIGTERM')
    graceOver = new Promise((resolve) => {
      graceTimer = setTimeout(() => {
        graceTimer = undefined
        killGroup(pid, 'SIGKILL')
        resolve()
      }, options.graceMs)
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
      if (child.pid !== undefined && killGroup(child.pid, 0)) await graceOver
      return ExitCode.lost
    }
    return exitStatus(result.code, result.signal)
  } finally {
    for (const signal of FORWARDED_SIGNALS) options.signals.off(signal, forward)
    lock.signal.removeEventListener('abort', onLost)
    if (graceTimer !== undefined) {
      clearTimeout(graceTimer)
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
