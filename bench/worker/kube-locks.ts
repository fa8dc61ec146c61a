/** kube-locks itself, over a store that counts (and reports) every lease request. */
import {
  createKubernetesLeaseStore,
  createLocks,
  HOLDER_OF_LABEL,
  type LeaseStore,
  type Lock,
  QUEUE_LABEL,
} from '../../sdk/internal.ts'
import { type Backend, loadKubeConfig } from './backend.ts'

/** A lease request answered (a watch: sent): its verb, what it was about, and its result. */
export type RequestReport = (verb: string, object: string, result: unknown) => void

export function kubeLocksBackend(
  kubeconfig: string,
  namespace: string,
  onRequest: RequestReport,
  identity = 'bench',
): Backend {
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
    async acquire(name, { expires, timeout, renew, fair, limit, shared }) {
      const lock: Lock = await locks.acquire(name, {
        expires,
        timeout: timeout ?? Number.POSITIVE_INFINITY,
        renew,
        fair,
        limit,
        shared,
      })
      return { release: () => lock.release() }
    },
    async watchChanges(onChange, signal) {
      let { resourceVersion } = await store.list(namespace, { signal })
      void (async () => {
        while (!signal.aborted) {
          await store.watch(namespace, { resourceVersion, signal }, (event) => {
            if (event.type === 'BOOKMARK') return
            resourceVersion = event.lease.resourceVersion
            onChange(event.lease.name, event.lease.resourceVersion)
          })
        }
      })().catch((error: unknown) => {
        if (signal.aborted) return
        // A measurement with a broken watch would be wrong: end the worker, which fails the run.
        process.stderr.write(`the watch failed: ${String(error)}\n`)
        process.exit(1)
      })
    },
    async close() {
      await locks.close()
      await store.close?.()
    },
  }
}

/**
 * The store with every request reported when it has been answered (a watch when it is sent): its verb,
 * and whether it was about a lock's lease, a ticket, a holder record (of a semaphore or shared holder),
 * a lock's line (a list of its tickets), a lock's holders (a list of its holder records) or the
 * namespace (the watch's list). Tickets and holder records are told by their label or by the `.q-` or
 * `.h-` in their name.
 */
function countingStore(store: LeaseStore, report: RequestReport): LeaseStore {
  const byName = (name: string) =>
    name.includes('.q-') ? 'ticket' : name.includes('.h-') ? 'record' : 'lock'
  const byLabels = (labels: Readonly<Record<string, string>>) =>
    labels[QUEUE_LABEL] !== undefined ? 'ticket' : labels[HOLDER_OF_LABEL] !== undefined ? 'record' : 'lock'
  const bySelector = (selector: string | undefined) =>
    selector?.includes(QUEUE_LABEL) ? 'line' : selector?.includes(HOLDER_OF_LABEL) ? 'holders' : 'namespace'
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
      counted('list', bySelector(options?.labelSelector), store.list(namespace, options)),
    watch: (namespace, options, onEvent) => {
      report('watch', 'namespace', undefined)
      return store.watch(namespace, options, onEvent)
    },
    ...(store.serverVersion && { serverVersion: store.serverVersion.bind(store) }),
    ...(store.close && { close: store.close.bind(store) }),
  }
}
