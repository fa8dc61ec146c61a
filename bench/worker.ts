/**
 * One benchmark process: a lock client (kube-locks, redlock, or the raw Lease writes) driven by JSON
 * commands on stdin, reporting JSON events on stdout. Every event carries `t`, the wall-clock time in
 * Unix milliseconds with sub-millisecond precision, so that events of different processes (and of the
 * Go peer) compare on one time line.
 *
 *   node bench/worker.ts '<WorkerConfig as JSON>'
 *
 * The protocol is in `worker/protocol.ts`, each lock client in a module of its own under `worker/`.
 */
import { readJsonLines } from '../dev/json-lines.ts'
import type { LeaseRecord } from '../sdk/internal.ts'
import type { Backend, Held } from './worker/backend.ts'
import { kubeLocksBackend, type RequestReport } from './worker/kube-locks.ts'
import { type Command, emit, type WorkerConfig } from './worker/protocol.ts'
import { rawBackend } from './worker/raw.ts'
import { redlockBackend } from './worker/redlock.ts'

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig
const backend = createBackend(config, onRequest)
const held = new Map<string, Held>()
const tasks = new Set<Promise<void>>()
/** Ends the `watch` command's watch on shutdown. */
const watching = new AbortController()

const lines = readJsonLines(
  process.stdin,
  (record) => handle(record as Command),
  (line) => emit('failed', { message: `not a command: ${line}` }),
)
lines.on('close', () => void shutdown())
emit('ready', { pid: process.pid })

function handle(command: Command): void {
  const task = run(command).catch((error: unknown) => {
    emit('failed', { op: command.op, id: 'id' in command ? command.id : undefined, message: String(error) })
  })
  tasks.add(task)
  void task.finally(() => tasks.delete(task))
}

async function run(command: Command): Promise<void> {
  switch (command.op) {
    case 'acquire': {
      emit('waiting', { id: command.id })
      const { name, expires, timeout, fair, limit, shared } = command
      expectQueued(
        command.id,
        limit !== undefined || shared !== undefined ? 'record' : (fair ?? true) ? 'ticket' : 'race',
      )
      const lock = await backend
        .acquire(name, { expires, timeout, renew: !!command.renew, fair, limit, shared })
        .finally(() => {
          queued.pending = undefined
        })
      held.set(command.id, lock)
      emit('acquired', { id: command.id })
      if (command.holdMs !== undefined) {
        await sleep(command.holdMs)
        await release(command.id)
      }
      return
    }
    case 'release':
      return release(command.id)
    case 'cycle': {
      const samples: number[] = []
      const requests: number[][] = []
      const started = performance.now()
      const until = started + (command.seconds ?? Number.POSITIVE_INFINITY) * 1000
      const count = command.count ?? Number.POSITIVE_INFINITY
      const { fair, limit, shared } = command
      const request = { expires: 20, timeout: 10, renew: false, fair, limit, shared }
      while (samples.length < count && performance.now() < until) {
        const t0 = performance.now()
        const lock = await backend.acquire(command.name, request)
        await lock.release()
        samples.push(performance.now() - t0)
        if (backend.lastRequests) requests.push([...backend.lastRequests])
        if (command.pauseMs !== undefined) await sleep(command.pauseMs)
      }
      emit('cycled', { samples, requests, seconds: (performance.now() - started) / 1000 })
      return
    }
    case 'hold-many': {
      const before = process.memoryUsage()
      const started = performance.now()
      let next = 0
      await Promise.all(
        Array.from({ length: command.concurrency }, async () => {
          while (next < command.count) {
            const i = next++
            held.set(
              `${command.prefix}-${i}`,
              await backend.acquire(`${command.prefix}-${i}`, { expires: 3600, timeout: 0, renew: false }),
            )
          }
        }),
      )
      const seconds = (performance.now() - started) / 1000
      await sleep(1000)
      globalThis.gc?.()
      const after = process.memoryUsage()
      const settled = command.settleSeconds === undefined ? undefined : await settle(command.settleSeconds)
      emit('holding', { count: command.count, seconds, before, after, settled })
      return
    }
    case 'counts':
      emit('counts', { counts: backend.counts ?? {} })
      return
    case 'watch': {
      if (backend.watchChanges === undefined) throw new Error('this backend does not watch')
      await backend.watchChanges((name, rv) => emit('watched', { name, rv }), watching.signal)
      emit('watching')
      return
    }
    case 'watch-bare': {
      if (backend.watchBare === undefined) throw new Error('this backend has no bare watch')
      await backend.watchBare(watching.signal)
      emit('watching')
      return
    }
    case 'exit':
      return shutdown()
  }
}

/**
 * Waits `seconds` while allocating short-lived objects (about 0.6 MB a second), as a live service
 * does, and returns the memory then. V8 shrinks its heap after a burst only in a collection that its
 * memory reducer schedules once it sees the allocation rate low, and it measures that rate at
 * collections: a process that allocates nothing at all never gets one.
 */
async function settle(seconds: number): Promise<NodeJS.MemoryUsage> {
  const work = setInterval(() => {
    void Array.from({ length: 1000 }, (_, i) => ({ i, text: `item ${i}` }))
  }, 100)
  await sleep(seconds * 1000)
  clearInterval(work)
  return process.memoryUsage()
}

/**
 * The acquisition in progress, and what it has done so far, for the `queued` event: it is in line — a
 * fair waiter's ticket exists; a racing waiter has read the lease held; a semaphore (or shared)
 * waiter's holder record exists, whose creation fixes its place — and its process watches.
 */
const queued: {
  pending: { readonly id: string; readonly line: 'ticket' | 'race' | 'record' } | undefined
  watching: boolean
  ticketed: boolean
  sawHeld: boolean
  recorded: boolean
} = { pending: undefined, watching: false, ticketed: false, sawHeld: false, recorded: false }

/** Watches for acquisition `id` to be in line; `line` says what puts it there. */
function expectQueued(id: string, line: 'ticket' | 'race' | 'record'): void {
  queued.pending = { id, line }
  queued.ticketed = false
  queued.sawHeld = false
  queued.recorded = false
}

function onRequest(verb: string, object: string, result: unknown): void {
  if (verb === 'watch') queued.watching = true
  if (queued.pending === undefined) return
  if (verb === 'create' && object === 'ticket') queued.ticketed = true
  if (verb === 'create' && object === 'record' && result !== undefined) queued.recorded = true
  if (verb === 'get' && object === 'lock' && (result as LeaseRecord | undefined)?.holderIdentity) {
    queued.sawHeld = true
  }
  const { id, line } = queued.pending
  const inLine = { ticket: queued.ticketed, race: queued.sawHeld, record: queued.recorded }[line]
  if (queued.watching && inLine) {
    queued.pending = undefined
    queued.ticketed = false
    queued.sawHeld = false
    queued.recorded = false
    emit('queued', { id })
  }
}

async function release(id: string): Promise<void> {
  const lock = held.get(id)
  if (lock === undefined) throw new Error(`no lock ${id} held`)
  held.delete(id)
  emit('releasing', { id })
  await lock.release()
  emit('released', { id })
}

let closing: Promise<void> | undefined
function shutdown(): Promise<void> {
  closing ??= (async () => {
    watching.abort()
    await backend.close()
    emit('closed')
    process.exit(0)
  })()
  return closing
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** `onRequest` hears of every lease request of the kube-locks client. */
function createBackend(config: WorkerConfig, onRequest: RequestReport): Backend {
  switch (config.backend) {
    case 'kube-locks':
      return kubeLocksBackend(config.kubeconfig, config.namespace, onRequest, config.identity)
    case 'raw':
      return rawBackend(config.kubeconfig, config.namespace, config.reuseConnections)
    case 'redlock':
      return redlockBackend(config.redisPort)
  }
}
