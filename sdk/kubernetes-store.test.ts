import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createLocks } from './create-locks.ts'
import {
  LeaseConflictError,
  LeaseNotFoundError,
  LockApiError,
  LockPermissionError,
  LockUnavailableError,
  NamespaceNotFoundError,
  WatchExpiredError,
} from './errors.ts'
import { responseError, transportError } from './kube/errors.ts'
import type { HttpResponse } from './kube/http.ts'
import {
  createKubernetesLeaseStore,
  kubeConfigNamespace,
  MAX_RETRY_AFTER_MS,
  parseRetryAfter,
} from './kubernetes-store.ts'
import type { LeaseRecord } from './lease-record.ts'
import { STALL_MARGIN_SECONDS } from './watch-hub.ts'

const ctx = (
  verb: 'get' | 'create' | 'update' | 'delete' | 'list' | 'watch',
  name: string | undefined = 'orders',
) => ({
  verb,
  namespace: 'shop',
  name,
  server: 'https://10.0.0.1:443',
})
const answer = (code: number, body: unknown, headers: Record<string, string> = {}): HttpResponse => ({
  status: code,
  headers,
  body,
})
const status = (code: number, reason: string, message = 'msg') =>
  answer(code, { kind: 'Status', code, reason, message })

describe('responseError and transportError', () => {
  it('branches 409 on the reason, not only on the status', () => {
    const exists = responseError(status(409, 'AlreadyExists'), ctx('create'))
    expect(exists).toBeInstanceOf(LeaseConflictError)
    expect((exists as LeaseConflictError).reason).toBe('AlreadyExists')
    const conflict = responseError(
      status(409, 'Conflict', 'Precondition failed: UID in precondition'),
      ctx('update'),
    )
    expect((conflict as LeaseConflictError).reason).toBe('Conflict')
  })

  it('maps 403 and 401 to LockPermissionError naming verb, resource and namespace', () => {
    const forbidden = responseError(status(403, 'Forbidden'), ctx('update'))
    expect(forbidden).toBeInstanceOf(LockPermissionError)
    expect(forbidden.message).toContain('cannot update leases.coordination.k8s.io in namespace `shop`')
    expect(forbidden.message).toContain('ClusterRole `kube-locks-client`')
    const unauthorized = responseError(answer(401, undefined), ctx('get'))
    expect(unauthorized.message).toContain('did not accept the credentials')
  })

  it('maps 404 of a named lease to LeaseNotFoundError and 410 to WatchExpiredError', () => {
    expect(responseError(status(404, 'NotFound'), ctx('delete'))).toBeInstanceOf(LeaseNotFoundError)
    expect(responseError(status(410, 'Expired'), ctx('watch', undefined))).toBeInstanceOf(WatchExpiredError)
  })

  it('maps 404 of a create whose Status names the namespace to NamespaceNotFoundError', () => {
    const body = {
      kind: 'Status',
      code: 404,
      reason: 'NotFound',
      message: 'namespaces "gone" not found',
      details: { name: 'gone', kind: 'namespaces' },
    }
    const error = responseError(answer(404, body), ctx('create')) as NamespaceNotFoundError
    expect(error).toBeInstanceOf(NamespaceNotFoundError)
    expect(error.namespace).toBe('gone')
    expect(error.message).toContain('namespace `gone` does not exist')
    // A missing lease is still a missing lease.
    const lease = { ...body, details: { name: 'orders', group: 'coordination.k8s.io', kind: 'leases' } }
    expect(responseError(answer(404, lease), ctx('delete'))).toBeInstanceOf(LeaseNotFoundError)
  })

  it('treats 5xx on a write as an unknown outcome, on a read as a plain failure', () => {
    const write = responseError(status(504, 'Timeout'), ctx('update')) as LockUnavailableError
    expect(write).toBeInstanceOf(LockUnavailableError)
    expect(write.outcomeUnknown).toBe(true)
    expect(write.message).toContain('https://10.0.0.1:443 answered 504')
    expect(
      (responseError(status(503, 'ServiceUnavailable'), ctx('get')) as LockUnavailableError).outcomeUnknown,
    ).toBe(false)
    expect(
      (responseError(status(429, 'TooManyRequests'), ctx('create')) as LockUnavailableError).outcomeUnknown,
    ).toBe(false)
  })

  it('knows a refused connection never carried the write, a reset one may have', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' })
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })
    const a = transportError(refused, ctx('create')) as LockUnavailableError
    expect(a.outcomeUnknown).toBe(false)
    expect(a.message).toContain('at https://10.0.0.1:443 could not be reached (ECONNREFUSED)')
    expect((transportError(reset, ctx('create')) as LockUnavailableError).outcomeUnknown).toBe(true)
  })

  it('reports other rejections with the server message', () => {
    const invalid = responseError(
      status(422, 'Invalid', 'spec.leaseDurationSeconds: Invalid value'),
      ctx('create'),
    )
    expect(invalid).toBeInstanceOf(LockApiError)
    expect(invalid.message).toContain('refused to create lease `shop/orders`: spec.leaseDurationSeconds')
  })
})

describe('429 Too Many Requests', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  const throttled = (headers: Record<string, string>) =>
    answer(
      429,
      { kind: 'Status', code: 429, reason: 'TooManyRequests', message: 'Too many requests' },
      headers,
    )

  it('is a known outcome, even for a write, and carries the Retry-After the server asked for', () => {
    for (const verb of ['create', 'update', 'delete', 'get'] as const) {
      const error = responseError(throttled({ 'retry-after': '3' }), ctx(verb)) as LockUnavailableError
      expect(error).toBeInstanceOf(LockUnavailableError)
      expect(error.outcomeUnknown, verb).toBe(false)
      expect(error.status).toBe(429)
      expect(error.retryAfterMs).toBe(3000)
    }
  })

  it('says the server throttled the request and what to do, not that it is unreachable', () => {
    const error = responseError(throttled({ 'retry-after': '2' }), ctx('update'))
    expect(error.message).toContain('https://10.0.0.1:443 is throttling requests (429 Too Many Requests')
    expect(error.message).toContain('asked to retry after 2 s')
    expect(error.message).toContain('API Priority and Fairness')
    expect(error.message).toContain('apiPriority')
    expect(error.message).not.toContain('reachable')
    const without = responseError(throttled({}), ctx('update')) as LockUnavailableError
    expect(without.retryAfterMs).toBeUndefined()
    expect(without.message).not.toContain('asked to retry')
  })

  it('finds the header whatever its case', () => {
    const error = responseError(throttled({ 'Retry-After': '1' }), ctx('get')) as LockUnavailableError
    expect(error.retryAfterMs).toBe(1000)
  })

  it.each([
    ['0', 0],
    ['1', 1000],
    ['  7 ', 7000],
    ['60', 60_000],
    ['61', MAX_RETRY_AFTER_MS],
    ['86400', MAX_RETRY_AFTER_MS],
    ['99999999999999999999999', MAX_RETRY_AFTER_MS],
    ['-1', undefined],
    ['1.5', undefined],
    ['1e3', undefined],
    ['soon', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('parses delta-seconds %j as %j ms, capped at one minute', (value, expected) => {
    expect(parseRetryAfter(value, Date.UTC(2030, 0, 1))).toBe(expected)
  })

  it.each([
    ['Tue, 01 Jan 2030 00:00:05 GMT', 5000],
    ['Tuesday, 01-Jan-30 00:00:05 GMT', 5000],
    ['Tue Jan  1 00:00:05 2030', 5000],
    ['Mon, 31 Dec 2029 23:59:00 GMT', 0],
    ['Tue, 01 Jan 2030 01:00:00 GMT', MAX_RETRY_AFTER_MS],
    ['Tue, 32 Jan 2030 00:00:05 GMT', undefined],
  ])('parses the HTTP-date %j as %j ms from now', (value, expected) => {
    expect(parseRetryAfter(value, Date.UTC(2030, 0, 1))).toBe(expected)
  })

  it('counts an HTTP-date from the wall clock when it translates the error', () => {
    vi.useFakeTimers({ now: Date.UTC(2030, 0, 1), toFake: ['Date'] })
    const error = responseError(
      throttled({ 'retry-after': 'Tue, 01 Jan 2030 00:00:04 GMT' }),
      ctx('update'),
    ) as LockUnavailableError
    expect(error.retryAfterMs).toBe(4000)
  })

  it('reaches the caller of the store from a real HTTP answer, headers included', async () => {
    const server = createServer((_request, response) => {
      response.writeHead(429, { 'content-type': 'application/json', 'retry-after': '2' })
      response.end(
        JSON.stringify({
          kind: 'Status',
          code: 429,
          reason: 'TooManyRequests',
          message: 'Too many requests',
        }),
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const store = createKubernetesLeaseStore(kubeConfigFor(`http://127.0.0.1:${port}`))
    const record: LeaseRecord = {
      namespace: 'shop',
      name: 'orders',
      uid: 'u-1',
      resourceVersion: '5',
      labels: {},
      annotations: {},
      holderIdentity: 'pod-a',
      leaseDurationSeconds: 20,
      acquireTime: '2030-01-01T00:00:00.000000Z',
      renewTime: '2030-01-01T00:00:00.000000Z',
      leaseTransitions: 0,
      creationTimestamp: '2030-01-01T00:00:00Z',
    }
    try {
      const update = store.update(record, { signal: AbortSignal.timeout(10_000) })
      await expect(update).rejects.toBeInstanceOf(LockUnavailableError)
      const error = (await update.catch((e: unknown) => e)) as LockUnavailableError
      expect(error).toMatchObject({ status: 429, outcomeUnknown: false, retryAfterMs: 2000 })
      const get = (await store.get('shop', 'orders').catch((e: unknown) => e)) as LockUnavailableError
      expect(get).toMatchObject({ status: 429, outcomeUnknown: false, retryAfterMs: 2000 })
    } finally {
      await store.close?.()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

describe('in-cluster configuration', () => {
  it('takes server, token file and namespace from the service account files', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kube-locks-sa-'))
    const dir = join(root, 'var/run/secrets/kubernetes.io/serviceaccount')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'namespace'), 'payments')
    writeFileSync(join(dir, 'token'), 'token')
    writeFileSync(join(dir, 'ca.crt'), '')
    const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT }
    process.env.KUBERNETES_SERVICE_HOST = '10.96.0.1'
    process.env.KUBERNETES_SERVICE_PORT = '443'
    try {
      const kubeConfig = new KubeConfig()
      kubeConfig.loadFromCluster(root)
      expect(kubeConfigNamespace(kubeConfig)).toBe('payments')
      expect(createKubernetesLeaseStore(kubeConfig).server).toBe('https://10.96.0.1:443')
      const savedNamespace = process.env.POD_NAMESPACE
      delete process.env.POD_NAMESPACE
      try {
        const fromFile = createLocks({ kubeConfig })
        expect(fromFile.namespace).toBe('payments')
        const explicit = createLocks({ kubeConfig, namespace: 'orders' })
        expect(explicit.namespace).toBe('orders')
        await Promise.all([fromFile.close(), explicit.close()])
      } finally {
        if (savedNamespace !== undefined) process.env.POD_NAMESPACE = savedNamespace
      }
    } finally {
      process.env.KUBERNETES_SERVICE_HOST = saved.host
      process.env.KUBERNETES_SERVICE_PORT = saved.port
      if (saved.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST
      if (saved.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT
      rmSync(root, { recursive: true, force: true })
    }
  })
})

function kubeConfigFor(server: string): KubeConfig {
  const kubeConfig = new KubeConfig()
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  })
  return kubeConfig
}

describe('watch', () => {
  it('advertises the server-side watch timeout the hub bounds a silent watch by', () => {
    const kubeConfig = kubeConfigFor('https://10.0.0.1:443')
    expect(createKubernetesLeaseStore(kubeConfig).watchTimeoutSeconds).toBe(30)
    expect(createKubernetesLeaseStore(kubeConfig, { watchTimeoutSeconds: 40 }).watchTimeoutSeconds).toBe(40)
    expect(() => createKubernetesLeaseStore(kubeConfig, { watchTimeoutSeconds: 0 })).toThrow(
      'Expected `watchTimeoutSeconds` to be an integer number of seconds from 1 to 3600, got `0` (number)',
    )
  })

  it('asks for bookmarks and the server-side timeout, and resolves when the server ends the stream', async () => {
    const requests: IncomingMessage[] = []
    const server = createServer((request, response) => {
      requests.push(request)
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end(
        `${JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Lease', metadata: { resourceVersion: '42' } } })}\n`,
      )
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const store = createKubernetesLeaseStore(kubeConfigFor(`http://127.0.0.1:${port}`))
    try {
      const events: unknown[] = []
      await store.watch(
        'shop',
        { resourceVersion: '7', labelSelector: 'a=b', signal: AbortSignal.timeout(10_000) },
        (event) => events.push(event),
      )
      expect(events).toEqual([{ type: 'BOOKMARK', resourceVersion: '42' }])
      const url = new URL(requests[0]?.url ?? '', 'http://x')
      expect(url.pathname).toBe('/apis/coordination.k8s.io/v1/namespaces/shop/leases')
      expect(Object.fromEntries(url.searchParams)).toEqual({
        watch: 'true',
        resourceVersion: '7',
        allowWatchBookmarks: 'true',
        labelSelector: 'a=b',
        timeoutSeconds: '30',
      })
    } finally {
      await store.close?.()
      await new Promise((resolve) => server.close(resolve))
    }
    expect(STALL_MARGIN_SECONDS).toBeGreaterThan(0)
  })
})

describe('serverVersion', () => {
  it('reads GET /version, and translates a failure', async () => {
    const paths: string[] = []
    const server = createServer((request, response) => {
      paths.push(request.url ?? '')
      if (paths.length === 1) {
        response.writeHead(200, { 'content-type': 'application/json' })
        response.end(
          JSON.stringify({ major: '1', minor: '33', gitVersion: 'v1.33.13', platform: 'linux/amd64' }),
        )
      } else {
        response.writeHead(503, { 'content-type': 'application/json' })
        response.end(
          JSON.stringify({ kind: 'Status', code: 503, reason: 'ServiceUnavailable', message: 'x' }),
        )
      }
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    const store = createKubernetesLeaseStore(kubeConfigFor(`http://127.0.0.1:${port}`))
    try {
      expect(await store.serverVersion?.({ signal: AbortSignal.timeout(10_000) })).toEqual({
        major: '1',
        minor: '33',
        gitVersion: 'v1.33.13',
      })
      await expect(store.serverVersion?.()).rejects.toBeInstanceOf(LockUnavailableError)
      expect(paths).toEqual(['/version', '/version'])
    } finally {
      await store.close?.()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
