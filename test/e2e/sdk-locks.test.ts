import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node'
import { afterEach, describe, expect, it } from 'vitest'
import { readJsonLines } from '../../dev/json-lines.ts'
import {
  compareResourceVersions,
  createLocks,
  LockPermissionError,
  LockUnavailableError,
  leaseNameFor,
} from '../../sdk/internal.ts'
import {
  adminKubeConfig,
  createNamespace,
  kubeconfigPath,
  serviceAccountKubeconfig,
  waitFor,
} from './support.ts'

const WORKER = fileURLToPath(new URL('./fixtures/sdk-worker.ts', import.meta.url))

interface WorkerEvent {
  readonly event: string
  readonly t: number
  readonly pid: number
  readonly token?: string
  readonly code?: string
  readonly name?: string
  readonly reason?: string
  readonly elapsedMs?: number
  readonly message?: string
}

interface Worker {
  readonly child: ChildProcessWithoutNullStreams
  readonly events: WorkerEvent[]
  readonly exit: Promise<number | null>
  readonly stderr: () => string
  send(command: string): void
  next(event: string, timeoutMs?: number): Promise<WorkerEvent>
}

const workers: Worker[] = []

afterEach(() => {
  for (const worker of workers.splice(0)) {
    if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL')
  }
})

let podCounter = 0

function startWorker(namespace: string, config: Record<string, unknown>): Worker {
  podCounter++
  const child = spawn(process.execPath, [WORKER, JSON.stringify(config)], {
    env: {
      ...process.env,
      KUBECONFIG: kubeconfigPath(),
      POD_NAMESPACE: namespace,
      POD_NAME: `worker-${podCounter}`,
      NODE_NAME: 'node-e2e',
    },
  })
  const events: WorkerEvent[] = []
  let stderr = ''
  readJsonLines(
    child.stdout,
    (record) => events.push(record as unknown as WorkerEvent),
    (line) => {
      stderr += `(stdout) ${line}\n`
    },
  )
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk
  })
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const worker: Worker = {
    child,
    events,
    exit,
    stderr: () => stderr,
    send: (command) => child.stdin.write(`${command}\n`),
    next: (event, timeoutMs = 20_000) =>
      waitFor(
        `worker ${child.pid} to report ${event} (stderr: ${stderr.slice(-500)})`,
        () => events.find((e) => e.event === event),
        { timeoutMs, intervalMs: 10 },
      ),
  }
  workers.push(worker)
  return worker
}

function exitsWithin(worker: Worker, ms: number): Promise<number | null> {
  return Promise.race([
    worker.exit,
    new Promise<never>((_, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`worker did not exit within ${ms} ms: ${worker.stderr()}`)),
        ms,
      )
      void worker.exit.then(() => clearTimeout(timer))
    }),
  ])
}

describe('SDK against a real API server, several processes', () => {
  it('keeps critical sections of four contending processes apart, with increasing fencing tokens', async () => {
    const namespace = await createNamespace('sdk-mutex')
    const contenders = [1, 2, 3, 4].map(() =>
      startWorker(namespace, { lock: 'orders/EU', rounds: 3, holdMs: 150, acquire: { timeout: 30 } }),
    )
    await Promise.all(contenders.map((worker) => exitsWithin(worker, 45_000)))
    const sections = contenders
      .flatMap((worker) => {
        const acquired = worker.events.filter((e) => e.event === 'acquired')
        const releasing = worker.events.filter((e) => e.event === 'releasing')
        return acquired.map((a, i) => ({
          start: a.t,
          end: releasing[i]?.t ?? Number.POSITIVE_INFINITY,
          token: a.token,
        }))
      })
      .sort((a, b) => a.start - b.start)
    expect(sections).toHaveLength(12)
    for (let i = 1; i < sections.length; i++) {
      const previous = sections[i - 1] as (typeof sections)[number]
      const current = sections[i] as (typeof sections)[number]
      expect(current.start, 'a section started before the previous one ended').toBeGreaterThanOrEqual(
        previous.end,
      )
      expect(compareResourceVersions(current.token as string, previous.token as string)).toBe(1)
    }
    for (const worker of contenders) expect(await worker.exit).toBe(0)
  })

  it('hands a released lock to a waiting process within milliseconds, through the watch', async () => {
    const namespace = await createNamespace('sdk-handover')
    const holder = startWorker(namespace, { lock: 'handover', hold: true })
    await holder.next('acquired')
    // A 60 s poll interval: only the watch can explain a fast handover.
    const waiter = startWorker(namespace, {
      lock: 'handover',
      hold: true,
      retryInterval: 60,
      acquire: { timeout: 30 },
    })
    await waiter.next('acquiring')
    // Let the waiter read the lease and open its watch.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    holder.send('release')
    const releasing = await holder.next('releasing')
    const acquired = await waiter.next('acquired')
    const latency = acquired.t - releasing.t
    expect(latency).toBeLessThan(500)
    expect(compareResourceVersions(acquired.token as string, releasing.token as string)).toBe(1)
    const aborted = await holder.next('aborted')
    expect(aborted.t).toBeLessThanOrEqual(acquired.t)
    holder.send('close')
    waiter.send('close')
    expect(await exitsWithin(holder, 10_000)).toBe(0)
    expect(await exitsWithin(waiter, 10_000)).toBe(0)
  })

  it('timeout 0 fails at once and timeout 2 after about 2 s; each process then exits by itself', async () => {
    const namespace = await createNamespace('sdk-timeout')
    const holder = startWorker(namespace, { lock: 'busy', hold: true })
    await holder.next('acquired')

    const immediate = startWorker(namespace, { lock: 'busy', acquire: { timeout: 0 } })
    const failedAtOnce = await immediate.next('failed')
    expect(failedAtOnce.code).toBe('LOCK_TIMEOUT')
    expect(failedAtOnce.elapsedMs).toBeLessThan(1000)

    const patient = startWorker(namespace, { lock: 'busy', acquire: { timeout: 2 } })
    const failedLater = await patient.next('failed')
    expect(failedLater.code).toBe('LOCK_TIMEOUT')
    expect(failedLater.elapsedMs).toBeGreaterThanOrEqual(1990)
    expect(failedLater.elapsedMs).toBeLessThan(3000)
    // The patient waiter had a watch open; after close() nothing may keep its process alive.
    expect(await exitsWithin(immediate, 10_000)).toBe(0)
    expect(await exitsWithin(patient, 10_000)).toBe(0)
    holder.send('close')
    expect(await exitsWithin(holder, 10_000)).toBe(0)
  })

  it('takes over an expired holder, whose signal aborted first', async () => {
    const namespace = await createNamespace('sdk-expiry')
    // The holder stays alive but never renews: its lock expires after 2 s.
    const stale = startWorker(namespace, { lock: 'expiring', hold: true, acquire: { expires: 2 } })
    const first = await stale.next('acquired')
    const successor = startWorker(namespace, { lock: 'expiring', hold: true, acquire: { timeout: 20 } })
    const taken = await successor.next('acquired', 30_000)
    const aborted = await stale.next('aborted')
    expect(aborted.code).toBe('LOCK_LOST')
    expect(aborted.reason).toBe('expired')
    expect(aborted.t).toBeLessThan(taken.t)
    expect(aborted.t - first.t).toBeGreaterThanOrEqual(1700)
    expect(compareResourceVersions(taken.token as string, first.token as string)).toBe(1)
    // The old holder's release must not free the new holder's lease.
    stale.send('release')
    await stale.next('released')
    const lease = await adminKubeConfig()
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: 'expiring', namespace })
    expect(lease.spec?.holderIdentity).toMatch(new RegExp(`_${successor.child.pid}_`))
    stale.send('close')
    successor.send('close')
    await Promise.all([exitsWithin(stale, 10_000), exitsWithin(successor, 10_000)])
  })

  it('takes over the lock of a killed holder after its expiry', async () => {
    const namespace = await createNamespace('sdk-killed')
    const victim = startWorker(namespace, { lock: 'killed', hold: true, acquire: { expires: 3 } })
    const first = await victim.next('acquired')
    victim.child.kill('SIGKILL')
    const successor = startWorker(namespace, { lock: 'killed', hold: true, acquire: { timeout: 20 } })
    const taken = await successor.next('acquired', 30_000)
    const started = await successor.next('acquiring')
    // A newcomer trusts only its own clock: it waits the lease duration plus the grace (1 s) from
    // its first read, and not much longer.
    expect(taken.t - first.t).toBeGreaterThanOrEqual(3000)
    expect(taken.t - started.t).toBeGreaterThanOrEqual(3000)
    expect(taken.t - started.t).toBeLessThan(3000 + 1000 + 2000)
    successor.send('close')
    await exitsWithin(successor, 10_000)
  })
})

describe('SDK against a real API server, in process', () => {
  it('writes the managed-by label, the name and holder annotations, and MicroTimes; release frees the lease', async () => {
    const namespace = await createNamespace('sdk-meta')
    const locks = createLocks({
      kubeConfig: adminKubeConfig(),
      namespace,
      service: 'update-customer',
      pod: 'pod-x',
      node: 'node-y',
    })
    const name = 'Tenant/ü/42'
    const lock = await locks.acquire(name)
    expect(lock.leaseName).toBe(leaseNameFor(name))
    const api = adminKubeConfig().makeApiClient(CoordinationV1Api)
    const lease = await api.readNamespacedLease({ name: lock.leaseName, namespace })
    expect(lease.metadata?.labels).toEqual({ 'app.kubernetes.io/managed-by': 'kube-locks' })
    expect(lease.metadata?.annotations).toEqual({
      'kube-locks.io/name': name,
      'kube-locks.io/service': 'update-customer',
      'kube-locks.io/pod': 'pod-x',
      'kube-locks.io/node': 'node-y',
      // Written by the create, dropped by the holder's next write: see "What a lease carries".
      'kube-locks.io/mode': 'exclusive',
    })
    expect(lease.spec?.holderIdentity).toBe(lock.holder)
    expect(String(lease.spec?.renewTime)).toMatch(/\.\d{6}Z$/)
    expect(lock.fencingToken).toBe(lease.metadata?.resourceVersion)
    await lock.release()
    const freed = await api.readNamespacedLease({ name: lock.leaseName, namespace })
    expect(freed.spec?.holderIdentity).toBeUndefined()
    expect(freed.metadata?.annotations).toEqual({ 'kube-locks.io/name': name })
    await locks.close()
  })

  it('raises LockPermissionError naming verb, resource and namespace for an account without rights', async () => {
    const namespace = await createNamespace('sdk-rbac')
    const kubeConfig = new KubeConfig()
    kubeConfig.loadFromFile(await serviceAccountKubeconfig(namespace, 'no-rights'))
    const locks = createLocks({ kubeConfig, namespace, service: 'x' })
    const error = await locks.acquire('forbidden', { timeout: 5 }).catch((e: unknown) => e)
    await locks.close()
    expect(error).toBeInstanceOf(LockPermissionError)
    expect((error as LockPermissionError).message).toContain(
      `cannot get leases.coordination.k8s.io in namespace \`${namespace}\``,
    )
  })

  it('names an unreachable API server and never waits past the deadline', async () => {
    const kubeConfig = new KubeConfig()
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'nowhere', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'c', cluster: 'nowhere', user: 'u' }],
      currentContext: 'c',
    })
    const locks = createLocks({ kubeConfig, namespace: 'default', service: 'x' })
    const started = performance.now()
    const error = await locks.acquire('unreachable', { timeout: 2 }).catch((e: unknown) => e)
    const elapsed = performance.now() - started
    await locks.close()
    expect(error).toBeInstanceOf(LockUnavailableError)
    expect((error as Error).message).toContain('https://127.0.0.1:1')
    expect(elapsed).toBeLessThan(2500)
  })
})
