/**
 * One service process of the demo, as it would run in a pod: it takes locks with the SDK in a loop and
 * reports what happened to the demo runner over IPC (see `protocol.ts`). Started by `demo/main.ts` with
 * the arguments of `roleArgs()`; the kubeconfig comes from `KUBECONFIG` (or the in-cluster account).
 *
 * It ignores SIGINT, so that Ctrl-C in the terminal does not kill it before the runner has collected
 * its reports; it stops on the runner's `stop` command or when the runner goes away.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { createLocks, LockLostError, LockTimeoutError } from '../sdk/internal.ts'
import type { Command, LockMode, Report } from './protocol.ts'
import { monotonicMs } from './protocol.ts'

const { values } = parseArgs({
  options: {
    instance: { type: 'string' },
    service: { type: 'string' },
    namespace: { type: 'string' },
    locks: { type: 'string', default: '' },
    timeout: { type: 'string' },
    expires: { type: 'string' },
    work: { type: 'string' },
    pause: { type: 'string' },
    overruns: { type: 'boolean', default: false },
    limit: { type: 'string' },
    shared: { type: 'boolean', default: false },
  },
})

function required(name: keyof typeof values): string {
  const value = values[name]
  if (typeof value !== 'string' || value === '') throw new Error(`demo/service.ts needs --${name}`)
  return value
}

function range(name: 'work' | 'pause'): [number, number] {
  const [min, max] = required(name).split('-').map(Number)
  if (min === undefined || max === undefined || !(min >= 0 && max >= min)) {
    throw new Error(`--${name} must be <min>-<max> milliseconds, got ${required(name)}`)
  }
  return [min, max]
}

const instance = required('instance')
const service = required('service')
const timeout = Number(required('timeout'))
const expires = Number(required('expires'))
const work = range('work')
const pause = range('pause')
const lockNames = values.locks === undefined || values.locks === '' ? [] : values.locks.split(',')
const mode: LockMode =
  values.limit !== undefined
    ? { kind: 'semaphore', limit: Number(values.limit) }
    : values.shared
      ? { kind: 'shared' }
      : { kind: 'exclusive' }

if (typeof process.send !== 'function') throw new Error('demo/service.ts runs under demo/main.ts (IPC)')
const send = (report: Report) => {
  if (process.connected) process.send?.(report)
}

const stop = new AbortController()
process.on('SIGINT', () => {})
process.on('disconnect', () => stop.abort(new Error('the demo runner went away')))
let started: () => void
const start = new Promise<void>((resolve) => {
  started = resolve
})
process.on('message', (command: Command) => {
  if (command.type === 'start') started()
  if (command.type === 'stop') {
    stop.abort(new Error('the demo is stopping'))
    started()
  }
})

const locks = createLocks({ service, namespace: values.namespace, identity: instance, pod: instance })

const between = ([min, max]: readonly [number, number]) => min + Math.random() * (max - min)
const pick = (names: readonly string[]) => names[Math.floor(Math.random() * names.length)]

/**
 * The work under the lock. Well-behaved work stops as soon as the lock's signal fires. Overrunning work
 * is a single call that cannot be interrupted (a slow downstream); when it returns, the signal tells the
 * code that the lock may be someone else's by now, and the result is dropped.
 */
async function doWork(signal: AbortSignal): Promise<boolean> {
  const ms = between(work)
  if (values.overruns) {
    await sleep(ms, undefined, { signal: stop.signal })
    return !signal.aborted
  }
  await sleep(ms, undefined, { signal: AbortSignal.any([signal, stop.signal]) })
  return true
}

async function once(): Promise<void> {
  const name = lockNames.length === 0 ? service : (pick(lockNames) ?? service)
  const requestedAt = monotonicMs()
  try {
    const run = async (signal: AbortSignal, lock: { holder: string; fencingToken: string }) => {
      const base = { lock: name, holder: lock.holder }
      const at = monotonicMs()
      send({ type: 'acquired', ...base, mode, token: lock.fencingToken, requestedAt, at, expires })
      let ended = false
      const end = (how: 'released' | 'expired' | 'lost') => {
        if (ended) return
        ended = true
        send({ type: 'ended', ...base, how, at: monotonicMs() })
      }
      const onAbort = () => {
        const reason: unknown = signal.reason
        end(reason instanceof LockLostError && reason.reason === 'expired' ? 'expired' : 'lost')
      }
      signal.addEventListener('abort', onAbort, { once: true })
      try {
        const committed = await doWork(signal)
        end('released')
        if (!committed) send({ type: 'dropped', lock: name, holder: lock.holder, at: monotonicMs() })
      } finally {
        signal.removeEventListener('abort', onAbort)
        end('released')
      }
    }
    // With no name, withLock() locks the service's own name. The stop signal is not passed on: a call
    // cancelled while its acquiring write is in flight could leave a lease held by nobody until it
    // expires, and the demo promises to leave no lock held. A wait lasts at most `timeout`.
    // A bad `--limit` is the SDK's to refuse (InvalidLockOptionsError), reported like any error.
    const options = {
      timeout,
      expires,
      ...(mode.kind === 'semaphore' ? { limit: mode.limit } : {}),
      ...(mode.kind === 'shared' ? { shared: true } : {}),
    }
    if (lockNames.length === 0) await locks.withLock(options, run)
    else await locks.withLock(name, options, run)
  } catch (error) {
    if (error instanceof LockTimeoutError) {
      send({ type: 'timeout', lock: name, timeout, heldBy: error.holder, requestedAt, at: monotonicMs() })
    } else if (!stop.signal.aborted) {
      send({
        type: 'error',
        message: error instanceof Error ? error.message : String(error),
        at: monotonicMs(),
      })
    }
  }
}

send({ type: 'ready', at: monotonicMs() })
await start
while (!stop.signal.aborted) {
  await once()
  await sleep(between(pause), undefined, { signal: stop.signal }).catch(() => {})
}
await locks.close()
process.disconnect?.()
