/** The floor: the lock's requests issued directly with @kubernetes/client-node. */
import { randomBytes } from 'node:crypto'
import { request as httpsRequest, type RequestOptions } from 'node:https'
import {
  ApiException,
  CoordinationV1Api,
  type KubeConfig,
  Observable,
  type RequestContext,
  type ResponseContext,
  type V1Lease,
  Watch,
} from '@kubernetes/client-node'
import { formatMicroTime, MANAGED_BY_SELECTOR } from '../../sdk/internal.ts'
import { type Backend, exclusiveOnly, loadKubeConfig } from './backend.ts'
import { now } from './protocol.ts'

/**
 * The floor: the requests the lock algorithm needs for an uncontended acquire and release of an
 * existing free lease — a consistent read, the taking update and the freeing update, each under the
 * lease's resourceVersion — issued directly with @kubernetes/client-node, with no retries or waiting.
 * client-node builds a new connection pool (so a new TLS connection) for every request; with
 * `reuseConnections` the first pool is handed to every later request, as the SDK's store does.
 */
export function rawBackend(
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
    async acquire(name, request) {
      exclusiveOnly('raw', request)
      const { expires, timeout } = request
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
    async watchChanges(onChange, signal) {
      const list = await client.listNamespacedLease({ namespace }, config)
      const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`
      let resourceVersion = list.metadata?.resourceVersion ?? '0'
      let current: AbortController | undefined
      signal.addEventListener('abort', () => current?.abort(), { once: true })
      const open = async (): Promise<void> => {
        current = await new Watch(kubeConfig).watch(
          path,
          { resourceVersion },
          (_type: string, lease: V1Lease) => {
            resourceVersion = lease.metadata?.resourceVersion ?? resourceVersion
            onChange(lease.metadata?.name ?? '', resourceVersion)
          },
          () => {
            if (!signal.aborted) void open()
          },
        )
        if (signal.aborted) current.abort()
      }
      await open()
    },
    async watchBare(signal) {
      const options: RequestOptions = {}
      await kubeConfig.applyToHTTPSOptions(options)
      const url = new URL(
        `${kubeConfig.getCurrentCluster()?.server ?? ''}/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      )
      // Longer than any measurement: the server does not end it while it is measured.
      url.search = new URLSearchParams({
        watch: 'true',
        labelSelector: MANAGED_BY_SELECTOR,
        timeoutSeconds: '3600',
      }).toString()
      await new Promise<void>((resolve, reject) => {
        const request = httpsRequest(url, { ...options, signal }, (response) => {
          if (response.statusCode !== 200) {
            reject(new Error(`the bare watch was answered ${response.statusCode}`))
            return
          }
          let buffer = ''
          response.setEncoding('utf8')
          response.on('data', (chunk: string) => {
            buffer += chunk
            for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
              JSON.parse(buffer.slice(0, end))
              buffer = buffer.slice(end + 1)
            }
          })
          response.on('error', () => {})
          resolve()
        })
        request.once('error', (error) => (signal.aborted ? resolve() : reject(error)))
        request.end()
      })
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
