import { type ChildProcess, spawn as nodeSpawn, type SpawnOptions } from 'node:child_process'
import { constants } from 'node:os'
import {
  createClusterLeaseStore,
  createLocks,
  DEFAULTS,
  defaultSafetyMargin,
  LeaseNotManagedError,
  LockModeConflictError,
  LockTimeoutError,
  setClampedTimeout,
} from '../sdk/internal.ts'
import { oneLine, UsageError } from './errors.ts'
import { ExitCode, interrupted } from './exit-codes.ts'
import { KILL_AFTER_DEFAULTS, RUN_ENV } from './flags.ts'
import { type CliContext, type CommonFlags, refuseTicketName, Session } from './session.ts'

export { KILL_AFTER_DEFAULTS, RUN_ENV }

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

export interface RunFlags extends CommonFlags {
  readonly expires?: number
  readonly timeout?: number
  readonly renew?: boolean
  readonly killAfter?: number
  /** The old name of `killAfter`. */
  readonly grace?: number
  readonly identity?: string
  readonly service?: string
  /** A semaphore: one of at most this many holders at once. */
  readonly limit?: number
  /** A shared hold: any number of shared holders at once, no exclusive one. */
  readonly shared?: boolean
}

/** The SDK's holder options for `--limit` and `--shared`; a usage error when both are given. */
export function holderOptions(flags: Pick<RunFlags, 'limit' | 'shared'>): { limit?: number; shared?: true } {
  if (flags.limit !== undefined && flags.shared) {
    throw new UsageError(
      '--limit and --shared cannot be given together: --limit N holds one of at most N places of a semaphore, --shared a shared lock that any number may hold at once; choose one',
    )
  }
  if (flags.limit !== undefined) return { limit: flags.limit }
  return flags.shared ? { shared: true } : {}
}

/** How `--verbose` names what was acquired. */
function acquiredWhat(options: { limit?: number; shared?: true }): string {
  if (options.limit !== undefined) return `a place of semaphore (limit ${options.limit})`
  return options.shared ? 'a shared hold of lock' : 'lock'
}

/** `locks run`: takes the lock, runs the command under {@link supervise}, releases the lock. */
export async function runCommand(ctx: CliContext, name: string, command: readonly string[], flags: RunFlags) {
  const [program, ...args] = command
  if (program === undefined) {
    throw new UsageError('no command given: put it after `--`, as in `locks run NAME -- CMD [ARGS...]`')
  }
  if (flags.grace !== undefined && flags.killAfter !== undefined) {
    throw new UsageError('--grace is the old name of --kill-after: give only --kill-after')
  }
  if (flags.grace !== undefined) {
    ctx.stderr('warning: --grace is deprecated and will be removed: use --kill-after, which means the same\n')
  }
  const timing = runTiming({ expires: flags.expires, killAfter: flags.killAfter ?? flags.grace })
  const holder = holderOptions(flags)
  await using session = new Session(ctx, flags)
  // A store of its own: the lock's watches want the SDK's short server-side timeout, not `--watch`'s.
  const store = createClusterLeaseStore(session.cluster)
  const locks = createLocks({
    store,
    namespace: session.namespace,
    ...(flags.requestTimeout > 0 ? { requestTimeout: flags.requestTimeout } : {}),
    ...(flags.identity === undefined ? {} : { identity: flags.identity }),
    ...(flags.service === undefined ? {} : { service: flags.service }),
  })
  try {
    let lock: Awaited<ReturnType<typeof locks.acquire>>
    try {
      lock = await locks.acquire(name, {
        expires: timing.expires,
        timeout: flags.timeout,
        renew: flags.renew === true,
        ...holder,
        // The signal fires killAfter early, so that SIGKILL lands before anyone else may take the lock.
        safetyMargin: timing.safetyMargin,
        signal: ctx.signal,
      })
    } catch (error) {
      if (ctx.signal.aborted) return interrupted(ctx.signal)
      if (error instanceof LockTimeoutError) {
        ctx.stderr(`error: ${oneLine(error.message)}\n`)
        return ExitCode.notAcquired
      }
      if (error instanceof LockModeConflictError) {
        // The SDK's message names its options; this one the flags.
        ctx.stderr(
          `error: lock \`${error.lockName}\` in namespace \`${error.namespace}\` is in use as a ${error.inUse}, but this run asked for a ${error.requested}; the command did not run: every holder of one name must give the same --limit (or all --shared), so use the same flags everywhere (see \`locks get ${name}\`), or another lock name\n`,
        )
        return ExitCode.modeConflict
      }
      // The SDK refuses a ticket's lease as not a lock's; say what it is.
      if (error instanceof LeaseNotManagedError) await refuseTicketName(session, name, 'run')
      throw error
    }
    if (flags.verbose) {
      ctx.stderr(
        `acquired ${acquiredWhat(holder)} \`${lock.name}\` in namespace \`${lock.namespace}\` as ${lock.holder} (${Object.keys(holder).length === 0 ? '' : `holder record ${lock.leaseName}, `}fencing token ${lock.fencingToken})\n`,
      )
    }
    return await supervise(lock, {
      command: program,
      args,
      env: { ...ctx.env },
      killAfterMs: timing.killAfter * 1000,
      signals: ctx.signals,
      warn: (line) => ctx.stderr(`error: ${line}\n`),
    })
  } finally {
    await locks.close()
    await store.close?.()
  }
}
