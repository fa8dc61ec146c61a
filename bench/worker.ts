/**
 * One benchmark process: a lock client (kube-locks, redlock, or the raw Lease writes) driven by JSON
 * commands on stdin, reporting JSON events on stdout. Every event carries `t`, the wall-clock time in
 * Unix milliseconds with sub-millisecond precision, so that events of different processes (and of the
 * Go peer) compare on one time line.
 *
 *   node bench/worker.ts '<WorkerConfig as JSON>'
 */
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import {
  ApiException,
  CoordinationV1Api,
  KubeConfig,
  Observable,
  type RequestContext,
  type ResponseContext,
  type V1Lease,
  Watch,
} from '@kubernetes/client-node'
import { Redis } from 'ioredis'
import Redlock, { type Lock as RedlockLock } from 'redlock'
import {
  createKubernetesLeaseStore,
  createLocks,
  formatMicroTime,
  type LeaseRecord,
  type LeaseStore,
  type Lock,
  QUEUE_LABEL,
} from '../sdk/internal.ts'

export type WorkerConfig =
  | {
      readonly backend: 'kube-locks'
      readonly kubeconfig: string
      readonly namespace: string
      /** Prefix of the holder identities, so that tickets and leases tell which process they are of. */
      readonly identity?: string
    }
  | {
      readonly backend: 'raw'
      readonly kubeconfig: string
      readonly namespace: string
      /** Reuse one connection pool (kept-alive connections), as the SDK does; else client-node's default. */
      readonly reuseConnections: boolean
    }
  | { readonly backend: 'redlock'; readonly redisPort: number }

export type Command =
  | {
      readonly op: 'acquire'
      readonly id: string
      readonly name: string
      /** Seconds. */
      readonly expires: number
      /** Seconds; `null` waits for as long as it takes. */
      readonly timeout: number | null
      readonly renew?: boolean
      /** Release this long after acquiring (milliseconds); without it, wait for a `release` command. */
      readonly holdMs?: number
      /** kube-locks: wait in line (the default) or race. */
      readonly fair?: boolean
    }
  | { readonly op: 'release'; readonly id: string }
  /** Acquire and release `name` over and over, one at a time, for `seconds` or `count` cycles. */
  | {
      readonly op: 'cycle'
      readonly name: string
      readonly seconds?: number
      readonly count?: number
      readonly fair?: boolean
    }
  /** kube-locks: the lease requests this process sent so far, by verb and object (`update lock`). */
  | { readonly op: 'counts' }
  /** Acquire `count` distinct locks (held, not renewed) and report the process's memory. */
  | {
      readonly op: 'hold-many'
      readonly prefix: string
      readonly count: number
      readonly concurrency: number
    }
  | { readonly op: 'exit' }

export const now = (): number => performance.timeOrigin + performance.now()

const emit = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ event, t: now(), ...fields })}\n`)

interface Backend {
  acquire(
    name: string,
    expires: number,
    timeout: number | null,
    renew: boolean,
    fair?: boolean,
  ): Promise<Held>
  /** Requests sent so far, by verb and object; kube-locks only. */
  readonly counts?: Readonly<Record<string, number>>
  /** Times of each request of one acquire+release, for the raw floor. */
  readonly lastRequests?: number[]
  close(): Promise<void>
}

interface Held {
  release(): Promise<void>
}

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig
const backend = createBackend(config)
const held = new Map<string, Held>()
const tasks = new Set<Promise<void>>()

const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  const command = JSON.parse(line) as Command
  const task = run(command).catch((error: unknown) => {
    emit('failed', { op: command.op, id: 'id' in command ? command.id : undefined, message: String(error) })
  })
  tasks.add(task)
  void task.finally(() => tasks.delete(task))
})
lines.on('close', () => void shutdown())
emit('ready', { pid: process.pid })

async function run(command: Command): Promise<void> {
  switch (command.op) {
    case 'acquire': {
      emit('waiting', { id: command.id })
      queued.pending = { id: command.id, fair: command.fair ?? true }
      const lock = await backend
        .acquire(command.name, command.expires, command.timeout, !!command.renew, command.fair)
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
      while (samples.length < count && performance.now() < until) {
        const t0 = performance.now()
        const lock = await backend.acquire(command.name, 20, 10, false, command.fair)
        await lock.release()
        samples.push(performance.now() - t0)
        if (backend.lastRequests) requests.push([...backend.lastRequests])
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
              await backend.acquire(`${command.prefix}-${i}`, 3600, 0, false),
            )
          }
        }),
      )
      const seconds = (performance.now() - started) / 1000
      await sleep(1000)
      globalThis.gc?.()
      emit('holding', { count: command.count, seconds, before, after: process.memoryUsage() })
      return
    }
    case 'counts':
      emit('counts', { counts: backend.counts ?? {} })
      return
    case 'exit':
      return shutdown()
  }
}

/**
 * The acquisition in progress, and what it has done so far, for the `queued` event: it is in line — a
 * fair waiter's ticket exists; a racing waiter has read the lease held — and its process watches.
 */
const queued: {
  pending: { readonly id: string; readonly fair: boolean } | undefined
  watching: boolean
  ticketed: boolean
  sawHeld: boolean
} = { pending: undefined, watching: false, ticketed: false, sawHeld: false }

function onRequest(verb: string, object: string, result: unknown): void {
  if (verb === 'watch') queued.watching = true
  if (queued.pending === undefined) return
  if (verb === 'create' && object === 'ticket') queued.ticketed = true
  if (verb === 'get' && object === 'lock' && (result as LeaseRecord | undefined)?.holderIdentity) {
    queued.sawHeld = true
  }
  const { id, fair } = queued.pending
  if (queued.watching && (fair ? queued.ticketed : queued.sawHeld)) {
    queued.pending = undefined
    queued.ticketed = false
    queued.sawHeld = false
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
    await backend.close()
    emit('closed')
    process.exit(0)
  })()
  return closing
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function createBackend(config: WorkerConfig): Backend {
  switch (config.backend) {
    case 'kube-locks':
      return kubeLocksBackend(config.kubeconfig, config.namespace, config.identity)
    case 'raw':
      return rawBackend(config.kubeconfig, config.namespace, config.reuseConnections)
    case 'redlock':
      return redlockBackend(config.redisPort)
  }
}

function loadKubeConfig(path: string): KubeConfig {
  const kubeConfig = new KubeConfig()
  kubeConfig.loadFromFile(path)
  return kubeConfig
}

function kubeLocksBackend(kubeconfig: string, namespace: string, identity = 'bench'): Backend {
  const counts: Record<string, number> = {}
  const store = countingStore(
    createKubernetesLeaseStore(loadKubeConfig(kubeconfig)),
    (verb, object, result) => {
      const key = `${verb} ${object}`
      counts[key] = (counts[key] ?? 0) + 1
      onRequest(verb, object, result)
    },
  )
  const locks = createLocks({ namespace, store, identity })
  return {
    counts,
    async acquire(name, expires, timeout, renew, fair) {
      const lock: Lock = await locks.acquire(name, {
        expires,
        timeout: timeout ?? Number.POSITIVE_INFINITY,
        renew,
        fair,
      })
      return { release: () => lock.release() }
    },
    async close() {
      await locks.close()
      await store.close?.()
    },
  }
}

/**
 * The store with every request reported when it has been answered (a watch when it is sent): its verb,
 * and whether it was about a lock's lease, a ticket, a lock's line (a list of its tickets) or the
 * namespace (the watch's list). Tickets are told by their label or by the `.q-` in their name.
 */
function countingStore(
  store: LeaseStore,
  report: (verb: string, object: string, result: unknown) => void,
): LeaseStore {
  const byName = (name: string) => (name.includes('.q-') ? 'ticket' : 'lock')
  const byLabels = (labels: Readonly<Record<string, string>>) =>
    labels[QUEUE_LABEL] === undefined ? 'lock' : 'ticket'
  const counted = async <T>(verb: string, object: string, request: Promise<T>): Promise<T> => {
    let result: T | undefined
    try {
      result = await request
      return result
    } finally {
      report(verb, object, result)
    }
  }
  return {
    server: store.server,
    watchTimeoutSeconds: store.watchTimeoutSeconds,
    get: (namespace, name, options) => counted('get', byName(name), store.get(namespace, name, options)),
    create: (draft, options) => counted('create', byLabels(draft.labels), store.create(draft, options)),
    update: (record, options) => counted('update', byLabels(record.labels), store.update(record, options)),
    delete: (namespace, name, preconditions, options) =>
      counted('delete', byName(name), store.delete(namespace, name, preconditions, options)),
    list: (namespace, options) =>
      counted(
        'list',
        options?.labelSelector?.includes(QUEUE_LABEL) ? 'line' : 'namespace',
        store.list(namespace, options),
      ),
    watch: (namespace, options, onEvent) => {
      report('watch', 'namespace', undefined)
      return store.watch(namespace, options, onEvent)
    },
    ...(store.serverVersion && { serverVersion: store.serverVersion.bind(store) }),
    ...(store.close && { close: store.close.bind(store) }),
  }
}

/**
 * The floor: the requests the lock algorithm needs for an uncontended acquire and release of an
 * existing free lease — a consistent read, the taking update and the freeing update, each under the
 * lease's resourceVersion — issued directly with @kubernetes/client-node, with no retries or waiting.
 * client-node builds a new connection pool (so a new TLS connection) for every request; with
 * `reuseConnections` the first pool is handed to every later request, as the SDK's store does.
 */
function rawBackend(
  kubeconfig: string,
  namespace: string,
  reuseConnections: boolean,
): Backend & { lastRequests: number[] } {
  const kubeConfig = loadKubeConfig(kubeconfig)
  const client = kubeConfig.makeApiClient(CoordinationV1Api)
  let dispatcher: ReturnType<RequestContext['getDispatcher']>
  const options = {
    middlewareMergeStrategy: 'append' as const,
    middleware: [
      {
        pre: (context: RequestContext) => {
          if (dispatcher === undefined) dispatcher = context.getDispatcher()
          else context.setDispatcher(dispatcher as NonNullable<typeof dispatcher>)
          return new Observable(Promise.resolve(context))
        },
        post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
      },
    ],
  }
  const config = reuseConnections ? options : undefined
  const api = {
    readNamespacedLease: (p: { name: string; namespace: string }) => client.readNamespacedLease(p, config),
    createNamespacedLease: (p: { namespace: string; body: V1Lease }) =>
      client.createNamespacedLease(p, config),
    replaceNamespacedLease: (p: { name: string; namespace: string; body: V1Lease }) =>
      client.replaceNamespacedLease(p, config),
  }
  const identity = `raw_${process.pid}_${randomBytes(4).toString('hex')}`
  const lastRequests: number[] = []
  const timedRequest = async <T>(request: () => Promise<T>): Promise<T> => {
    const t0 = performance.now()
    const result = await request()
    lastRequests.push(performance.now() - t0)
    return result
  }
  return {
    lastRequests,
    async acquire(name, expires, timeout) {
      lastRequests.length = 0
      let lease: V1Lease
      try {
        lease = await timedRequest(() => api.readNamespacedLease({ name, namespace }))
      } catch (error) {
        if (!(error instanceof ApiException && error.code === 404)) throw error
        const time = formatMicroTime(Date.now()) as unknown as Date
        lease = await api.createNamespacedLease({
          namespace,
          body: { metadata: { name, namespace }, spec: { leaseDurationSeconds: expires, renewTime: time } },
        })
      }
      if (lease.spec?.holderIdentity && timeout !== 0) {
        lease = await untilFree(kubeConfig, namespace, name, lease.metadata?.resourceVersion ?? '0')
      }
      const time = formatMicroTime(now()) as unknown as Date
      lease.spec = {
        ...lease.spec,
        holderIdentity: identity,
        leaseDurationSeconds: expires,
        acquireTime: time,
        renewTime: time,
      }
      let current = await timedRequest(() => api.replaceNamespacedLease({ name, namespace, body: lease }))
      return {
        async release() {
          const freed = formatMicroTime(now()) as unknown as Date
          current.spec = {
            ...current.spec,
            holderIdentity: undefined,
            acquireTime: undefined,
            renewTime: freed,
          }
          current = await timedRequest(() => api.replaceNamespacedLease({ name, namespace, body: current }))
        },
      }
    },
    close: async () => {},
  }
}

/** The first version of the lease with no holder, from a watch that starts after `resourceVersion`. */
async function untilFree(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  resourceVersion: string,
): Promise<V1Lease> {
  let controller: AbortController | undefined
  let found: V1Lease | undefined
  return new Promise<V1Lease>((resolve, reject) => {
    const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`
    new Watch(kubeConfig)
      .watch(
        path,
        { fieldSelector: `metadata.name=${name}`, resourceVersion },
        (type: string, lease: V1Lease) => {
          if (found === undefined && type === 'MODIFIED' && !lease.spec?.holderIdentity) {
            found = lease
            resolve(lease)
            controller?.abort()
          }
        },
        (error: unknown) => {
          if (found === undefined) reject(error ?? new Error('the watch ended'))
        },
      )
      .then((c) => {
        controller = c
        if (found !== undefined) c.abort()
      }, reject)
  })
}

/** node-redlock with its default settings; a wait longer than its retries starts a new `acquire()`. */
function redlockBackend(port: number): Backend {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: false })
  const redlock = new Redlock([client])
  return {
    async acquire(name, expires, timeout) {
      const deadline = timeout === null ? Number.POSITIVE_INFINITY : performance.now() + timeout * 1000
      for (;;) {
        try {
          const lock: RedlockLock = await redlock.acquire([`bench:${name}`], expires * 1000)
          return { release: async () => void (await lock.release()) }
        } catch (error) {
          if (performance.now() >= deadline || timeout === 0) throw error
        }
      }
    },
    async close() {
      await client.quit()
    },
  }
}
