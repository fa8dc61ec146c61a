import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { LeaseNotFoundError, LockApiError, LockPermissionError, WatchExpiredError } from '../errors.ts'
import type { LeaseObject } from '../lease-record.ts'
import type { KubernetesLeaseEvent, KubernetesLeaseStore } from './store.ts'
import { createStoreOverConnection } from './store.ts'

// The Kubernetes store over a fake API server: what the controller and the CLI read through it.

let server: Server | undefined
let store: KubernetesLeaseStore | undefined
const requests: { method: string; url: URL; body: string }[] = []

type Handler = (request: IncomingMessage, response: ServerResponse, url: URL) => void

async function serve(handler: Handler, prefix = '', logs?: string[]): Promise<KubernetesLeaseStore> {
  server = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk) => {
      body += chunk
    })
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://x')
      requests.push({ method: request.method ?? '', url, body })
      response.setHeader('content-type', 'application/json')
      handler(request, response, url)
    })
  })
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const url = `http://127.0.0.1:${port}${prefix}`
  const logger = logs && {
    debug: (_: string, fields?: Record<string, unknown>) => logs.push(`${fields?.method} ${fields?.url}`),
  }
  store = createStoreOverConnection(() => ({ server: url, tls: {}, headers: () => ({}) }), url, {
    watchTimeoutSeconds: 30,
    ...(logger ? { logger } : {}),
  })
  return store
}

afterEach(async () => {
  await store?.close?.()
  server?.closeAllConnections()
  await new Promise((resolve) => server?.close(resolve))
  server = undefined
  store = undefined
  requests.length = 0
})

function lease(namespace: string, name: string, resourceVersion = '5'): LeaseObject {
  return {
    metadata: {
      name,
      namespace,
      uid: `uid-${name}`,
      resourceVersion,
      labels: { 'app.kubernetes.io/managed-by': 'kube-locks' },
      managedFields: [{ manager: 'kube-locks' }],
    },
    spec: { holderIdentity: 'a', leaseDurationSeconds: 20, renewTime: '2030-01-01T00:00:00.123456Z' },
  }
}

describe('list', () => {
  it('lists all namespaces in pages, with the selector, and hands back the objects as sent', async () => {
    const all = [lease('shop', 'a'), lease('pay', 'b'), lease('pay', 'c')]
    const kube = await serve((_request, response, url) => {
      const from = Number(url.searchParams.get('continue') ?? '0')
      const limit = Number(url.searchParams.get('limit'))
      const next = from + limit < all.length ? String(from + limit) : undefined
      response.end(
        JSON.stringify({
          items: all.slice(from, from + limit),
          metadata: { resourceVersion: '9', ...(next ? { continue: next } : {}) },
        }),
      )
    })
    const first = await kube.list(undefined, { labelSelector: 'x=y', limit: 2, objects: true })
    expect(first.items.map((item) => `${item.namespace}/${item.name}`)).toEqual(['shop/a', 'pay/b'])
    expect(first.objects?.[0]?.spec?.renewTime).toBe('2030-01-01T00:00:00.123456Z')
    expect(first.objects?.[0]?.metadata?.managedFields).toEqual([{ manager: 'kube-locks' }])
    expect(first.continue).toBe('2')
    const second = await kube.list(undefined, { labelSelector: 'x=y', limit: 2, continue: first.continue })
    expect(second.items.map((item) => item.name)).toEqual(['c'])
    expect(second.continue).toBeUndefined()
    expect(second.objects).toBeUndefined()
    expect(requests.map((request) => `${request.url.pathname}${request.url.search}`)).toEqual([
      '/apis/coordination.k8s.io/v1/leases?labelSelector=x%3Dy&limit=2',
      '/apis/coordination.k8s.io/v1/leases?labelSelector=x%3Dy&limit=2&continue=2',
    ])
  })

  it('keeps the path of a server that lives under a prefix, and tells the logger of every request', async () => {
    const logs: string[] = []
    const kube = await serve(
      (_request, response) => response.end(JSON.stringify({ items: [], metadata: { resourceVersion: '1' } })),
      '/k8s/clusters/c-1/',
      logs,
    )
    await kube.list('shop')
    expect(requests[0]?.url.pathname).toBe(
      '/k8s/clusters/c-1/apis/coordination.k8s.io/v1/namespaces/shop/leases',
    )
    expect(logs).toEqual([`GET ${kube.server}apis/coordination.k8s.io/v1/namespaces/shop/leases`])
  })
  it('says a refusal across all namespaces needs a ClusterRole', async () => {
    const kube = await serve((_request, response) => {
      response.writeHead(403)
      response.end(JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden', message: 'no' }))
    })
    const error = await kube.list(undefined).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(LockPermissionError)
    expect((error as Error).message).toBe(
      'cannot list leases.coordination.k8s.io in all namespaces: the service account needs `list` on `leases.coordination.k8s.io` cluster-wide (a ClusterRole bound with a ClusterRoleBinding), or name the namespaces to work in (the controller: --namespaces)',
    )
  })
})

describe('getObject', () => {
  it('returns the lease as sent, or undefined when there is none', async () => {
    const kube = await serve((_request, response, url) => {
      if (url.pathname.endsWith('/a')) return response.end(JSON.stringify(lease('shop', 'a')))
      response.writeHead(404)
      response.end(
        JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', details: { kind: 'leases' } }),
      )
    })
    expect(await kube.getObject('shop', 'a')).toEqual(lease('shop', 'a'))
    expect(await kube.getObject('shop', 'b')).toBeUndefined()
    expect((await kube.get('shop', 'a'))?.renewTime).toBe('2030-01-01T00:00:00.123456Z')
  })
})

describe('watch', () => {
  it('watches one lease across namespaces by field selector, with the objects as sent', async () => {
    const kube = await serve((_request, response) => {
      response.write(`${JSON.stringify({ type: 'MODIFIED', object: lease('pay', 'b', '7') })}\n`)
      response.write(
        `${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '8' } } })}\n`,
      )
      response.end()
    })
    const events: KubernetesLeaseEvent[] = []
    await kube.watch(
      undefined,
      { resourceVersion: '6', fieldSelector: 'metadata.name=b', objects: true },
      (event) => events.push(event),
    )
    expect(events.map((event) => event.type)).toEqual(['MODIFIED', 'BOOKMARK'])
    const [change] = events
    expect(change?.type === 'MODIFIED' && change.lease.namespace).toBe('pay')
    expect(change?.type === 'MODIFIED' && change.object?.metadata?.managedFields).toEqual([
      { manager: 'kube-locks' },
    ])
    const query = Object.fromEntries(requests[0]?.url.searchParams ?? [])
    expect(requests[0]?.url.pathname).toBe('/apis/coordination.k8s.io/v1/leases')
    expect(query).toMatchObject({ watch: 'true', resourceVersion: '6', fieldSelector: 'metadata.name=b' })
  })

  it('hands out no objects unless asked, and rejects with WatchExpiredError on an ERROR event of 410', async () => {
    const kube = await serve((_request, response, url) => {
      if (url.searchParams.get('resourceVersion') === '1') {
        response.end(
          `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } })}\n`,
        )
        return
      }
      response.end(`${JSON.stringify({ type: 'ADDED', object: lease('shop', 'a') })}\n`)
    })
    const events: KubernetesLeaseEvent[] = []
    await kube.watch('shop', { resourceVersion: '2' }, (event) => events.push(event))
    expect(events[0]).not.toHaveProperty('object')
    await expect(kube.watch('shop', { resourceVersion: '1' }, () => {})).rejects.toBeInstanceOf(
      WatchExpiredError,
    )
  })
})

describe('Events', () => {
  it('creates and merge-patches Events; a missing Event is a LockApiError of status 404, not a missing lease', async () => {
    const kube = await serve((request, response) => {
      if (request.method === 'POST') return response.end(requests.at(-1)?.body)
      response.writeHead(404)
      response.end(
        JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: 'events "e" not found' }),
      )
    })
    const created = await kube.createEvent('shop', { metadata: { name: 'e' }, note: 'n' })
    expect(created).toEqual({ metadata: { name: 'e' }, note: 'n' })
    const patch = kube.patchEvent('shop', 'e', { series: { count: 2 } })
    await expect(patch).rejects.toBeInstanceOf(LockApiError)
    await expect(patch).rejects.not.toBeInstanceOf(LeaseNotFoundError)
    await expect(patch).rejects.toMatchObject({ status: 404 })
    expect(requests.map((request) => `${request.method} ${request.url.pathname}`)).toEqual([
      'POST /apis/events.k8s.io/v1/namespaces/shop/events',
      'PATCH /apis/events.k8s.io/v1/namespaces/shop/events/e',
    ])
  })
})
