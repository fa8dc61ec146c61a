import { type Locks, type Logger, setClampedTimeout } from '../sdk/internal.ts'

/**
 * Chooses the one replica that acts. While `run` is active the elector campaigns; when it becomes the
 * leader it calls `onStartedLeading` with a signal that aborts the moment leadership may be lost, and
 * campaigns again after that. When `signal` aborts it calls `stopActing`, waits for it, then gives up
 * leadership so another replica takes over at once.
 */
export interface LeaderElector {
  run(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<void>
}

export interface LeaderCallbacks {
  onStartedLeading(leading: AbortSignal, identity: string): void
  /** Called when leadership ends or is about to be released; resolves once nothing acts any more. */
  stopActing(): Promise<void>
}

export interface LockLeaderElectorOptions {
  readonly locks: Locks
  /** Lock name; replicas that share it elect one leader. */
  readonly name: string
  /** Seconds until a dead leader's lock expires; renewed every third of that. */
  readonly expires: number
  readonly logger: Logger
  /** Wait in milliseconds after a failed campaign. */
  readonly retryMs?: number
}

/** Leader election with a renewing kube-locks lock, judged like any other lock (DESIGN.md). */
export function createLockLeaderElector(options: LockLeaderElectorOptions): LeaderElector {
  const { locks, name, expires, logger } = options
  const retryMs = options.retryMs ?? 2000
  const fields = { lock: name, namespace: locks.namespace }
  return {
    async run(signal, callbacks) {
      while (!signal.aborted) {
        let lock: Awaited<ReturnType<Locks['acquire']>>
        try {
          logger.info?.('waiting for leadership', fields)
          lock = await locks.acquire(name, {
            expires,
            timeout: Number.POSITIVE_INFINITY,
            renew: true,
            // Two or three replicas need no line, and the leader-election Role grants no `delete`,
            // which a waiter's ticket needs.
            fair: false,
            signal,
          })
        } catch (error) {
          if (signal.aborted) break
          logger.error?.('could not campaign for leadership; retrying', { ...fields, error })
          await sleep(retryMs, signal)
          continue
        }
        logger.info?.('became the leader', {
          ...fields,
          holder: lock.holder,
          resourceVersion: lock.fencingToken,
        })
        callbacks.onStartedLeading(lock.signal, lock.holder)
        await untilEither(lock.signal, signal)
        await callbacks.stopActing()
        if (lock.signal.aborted) {
          logger.warn?.('lost leadership; stopped acting', {
            ...fields,
            holder: lock.holder,
            error: lock.signal.reason,
          })
        }
        // Releasing a lost lock is a no-op in the SDK; releasing a held one hands over at once.
        await lock.release()
        if (signal.aborted) logger.info?.('released leadership', { ...fields, holder: lock.holder })
      }
    },
  }
}

/** Always the leader: for a single replica without leader election, and for tests. */
export function alwaysLeader(identity = 'standalone'): LeaderElector {
  return {
    async run(signal, callbacks) {
      callbacks.onStartedLeading(signal, identity)
      await untilEither(signal, signal)
      await callbacks.stopActing()
    },
  }
}

function untilEither(a: AbortSignal, b: AbortSignal): Promise<void> {
  if (a.aborted || b.aborted) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      a.removeEventListener('abort', done)
      b.removeEventListener('abort', done)
      resolve()
    }
    a.addEventListener('abort', done, { once: true })
    b.addEventListener('abort', done, { once: true })
  })
}

/** Resolves after `ms`, or at once when `signal` aborts; never rejects. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve()
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setClampedTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
