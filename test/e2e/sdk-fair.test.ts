import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ControlPlane } from '../../dev/cluster/index.ts'
import { readJsonLines } from '../../dev/json-lines.ts'
import {
  type AcquireOptions,
  compareResourceVersions,
  DEFAULTS,
  leaseNameFor,
  QUEUE_POSITION_ANNOTATION,
  queueSelector,
} from '../../sdk/internal.ts'
import { waitFor } from './support.ts'

// Fair locks across processes on a real API server: waiters that arrive one after the other at a held
// lock get it in that order, with a bounded number of lease requests per handover, and a waiter that
// dies in line holds the others up no longer than its ticket's duration plus the grace — with no
// controller to clean up after it.
//
// On a control plane of this file's own: the API server's request counters are global, and the leases
// of test files running beside this one would count as this drain's.

const WORKER = fileURLToPath(new URL('./fixtures/sdk-worker.ts', import.meta.url))
const LOCK = 'fair/one'
const LEASE = leaseNameFor(LOCK)
/** A waiter that died is passed over once it was seen unrenewed this long (ticket duration + grace). */
const DEAD_TICKET_MS = (DEFAULTS.ticketDuration + DEFAULTS.expiryGrace) * 1000
/** One API round trip plus reporting on a loaded machine. */
const ROUND_TRIP_MS = 3_000

interface WorkerEvent {
  readonly event: string
  readonly t: number
  readonly pid: number
  readonly token?: string
  readonly holder?: string
  readonly code?: string
  readonly message?: string
}

interface Worker {
  readonly name: string
  readonly child: ChildProcessWithoutNullStreams
  readonly events: WorkerEvent[]
  /** Called with every event, as it arrives. */
  onEvent: ((event: WorkerEvent) => void) | undefined
  send(command: string): void
  next(event: string, timeoutMs?: number): Promise<WorkerEvent>
}

interface Ticket {
  readonly name: string
  readonly holderIdentity: string
  /** Its place in line: the resourceVersion of its creation. */
  readonly position: string
}

let plane: ControlPlane | undefined
const workers: Worker[] = []

beforeAll(async () => {
  plane = await ControlPlane.start()
}, 120_000)

afterEach(() => {
  for (const worker of workers.splice(0)) {
    if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL')
  }
})

afterAll(async () => {
  await plane?.stop()
})

function controlPlane(): ControlPlane {
  if (!plane) throw new Error('no control plane')
  return plane
}

async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`
  const created = await controlPlane().request('POST', '/api/v1/namespaces', { metadata: { name } })
  expect(created.status).toBe(201)
  return name
}

/**
 * A process that takes `LOCK` once (fair, the default) and holds it until told `release`. The holder
 * renews: the line takes longer to form than a lease lasts.
 */
function startWorker(namespace: string, name: string, acquire: AcquireOptions = { timeout: 80 }): Worker {
  const child = spawn(process.execPath, [WORKER, JSON.stringify({ lock: LOCK, hold: true, acquire })], {
    env: {
      ...process.env,
      KUBECONFIG: controlPlane().kubeconfigPath,
      POD_NAMESPACE: namespace,
      // The holder identity begins with the pod name: it tells whose ticket is whose.
      POD_NAME: name,
      NODE_COMPILE_CACHE: join(tmpdir(), 'kube-locks-e2e-compile-cache'),
    },
  })
  let stderr = ''
  const worker: Worker = {
    name,
    child,
    events: [],
    onEvent: undefined,
    send: (command) => child.stdin.write(`${command}\n`),
    next: (event, timeoutMs = 30_000) =>
      waitFor(
        `${name} to report ${event} (stderr: ${stderr.slice(-500)})`,
        () => worker.events.find((e) => e.event === event),
        { timeoutMs, intervalMs: 10 },
      ),
  }
  readJsonLines(
    child.stdout,
    (record) => {
      const event = record as unknown as WorkerEvent
      worker.events.push(event)
      worker.onEvent?.(event)
    },
    (line) => {
      stderr += `(stdout) ${line}\n`
    },
  )
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk
  })
  workers.push(worker)
  return worker
}

/** The tickets of `LOCK`'s line, by label selector (one LIST of leases). */
async function tickets(namespace: string): Promise<Ticket[]> {
  const selector = encodeURIComponent(queueSelector(LEASE))
  const response = await controlPlane().request(
    'GET',
    `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases?labelSelector=${selector}`,
  )
  expect(response.status).toBe(200)
  const list = JSON.parse(response.body) as {
    items: {
      metadata: { name: string; resourceVersion: string; annotations?: Record<string, string> }
      spec: { holderIdentity?: string }
    }[]
  }
  return list.items.map(({ metadata, spec }) => ({
    name: metadata.name,
    holderIdentity: spec.holderIdentity ?? '',
    position: metadata.annotations?.[QUEUE_POSITION_ANNOTATION] ?? metadata.resourceVersion,
  }))
}

/** Starts the waiter `name` and waits until its ticket is in line. */
async function arrive(namespace: string, name: string): Promise<{ worker: Worker; ticket: Ticket }> {
  const worker = startWorker(namespace, name)
  const ticket = await waitFor(
    `the ticket of ${name}`,
    async () => (await tickets(namespace)).find((t) => t.holderIdentity.startsWith(`${name}_`)),
    { timeoutMs: 30_000, intervalMs: 50 },
  )
  return { worker, ticket }
}

interface LeaseRequests {
  /** `apiserver_request_total` of leases, summed over codes, by verb. */
  readonly byVerb: Map<string, number>
  /** `apiserver_longrunning_requests` of leases: watches open right now. */
  readonly openWatches: number
}

/** `*_total` lines of `name{…resource="leases"…}`, summed by verb. */
function sumByVerb(metrics: string, name: string): Map<string, number> {
  const sums = new Map<string, number>()
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) || !line.includes('resource="leases"')) continue
    const verb = /[{,]verb="([^"]*)"/.exec(line)?.[1] ?? ''
    sums.set(verb, (sums.get(verb) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)))
  }
  return sums
}

async function leaseRequests(): Promise<LeaseRequests> {
  const response = await controlPlane().request('GET', '/metrics')
  expect(response.status).toBe(200)
  const open = sumByVerb(response.body, 'apiserver_longrunning_requests')
  return {
    byVerb: sumByVerb(response.body, 'apiserver_request_total'),
    openWatches: open.get('WATCH') ?? 0,
  }
}

/**
 * The lease requests sent between two readings, by verb. A watch counts in `apiserver_request_total`
 * when it ends: the waiters' watches, opened before the first reading, end during the drain as each
 * waiter gets the lock. Watches opened in between are those that ended plus those still open, less
 * those open before. `own`: this test's own requests in between, left out.
 */
function sentBetween(
  before: LeaseRequests,
  after: LeaseRequests,
  own: Readonly<Record<string, number>>,
): Record<string, number> {
  const sent: Record<string, number> = {}
  for (const [verb, count] of after.byVerb) {
    let d = count - (before.byVerb.get(verb) ?? 0) - (own[verb] ?? 0)
    if (verb === 'WATCH') d += after.openWatches - before.openWatches
    if (d !== 0) sent[verb] = d
  }
  return sent
}

/**
 * Releases the lock as soon as each of `line` reports it acquired (a holder that does not dawdle), and
 * resolves with the order in which they acquired it.
 */
function drain(line: readonly Worker[], timeoutMs: number): Promise<Worker[]> {
  const order: Worker[] = []
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const got = order.map((w) => w.name).join(', ')
      reject(new Error(`only ${got || 'nobody'} acquired within ${timeoutMs} ms`))
    }, timeoutMs)
    for (const worker of line) {
      worker.onEvent = (event) => {
        if (event.event === 'failed') {
          clearTimeout(timer)
          reject(new Error(`${worker.name} failed: ${event.code} ${event.message}`))
        } else if (event.event === 'acquired') {
          order.push(worker)
          worker.send('release')
        } else if (event.event === 'released' && order.length === line.length) {
          if (order.every((w) => w.events.some((e) => e.event === 'released'))) {
            clearTimeout(timer)
            resolve(order)
          }
        }
      }
    }
  })
}

function tokens(order: readonly Worker[]): string[] {
  return order.map((w) => w.events.find((e) => e.event === 'acquired')?.token ?? '')
}

function expectIncreasing(versions: readonly string[]): void {
  for (let i = 1; i < versions.length; i++) {
    expect(compareResourceVersions(versions[i - 1] as string, versions[i] as string)).toBeLessThan(0)
  }
}

describe('fair locks across processes', () => {
  it('ten waiters that arrived one after the other get the lock in that order, at most 4 lease requests per handover', async () => {
    const namespace = await createNamespace('sdk-fair')
    const holder = startWorker(namespace, 'holder', { renew: true })
    await holder.next('acquired')
    const line: Worker[] = []
    const positions: string[] = []
    for (let i = 1; i <= 10; i++) {
      const { worker, ticket } = await arrive(namespace, `waiter-${i}`)
      line.push(worker)
      positions.push(ticket.position)
    }
    // Each ticket was created after the one before it was in line: the order of arrival is known.
    expectIncreasing(positions)
    expect(line.every((w) => !w.events.some((e) => e.event === 'acquired'))).toBe(true)

    const before = await leaseRequests()
    const started = performance.now()
    const drained = drain(line, 30_000)
    holder.send('release')
    const order = await drained
    const drainMs = performance.now() - started
    // Every waiter deletes its ticket once it has the lock (in the background): wait for the last
    // delete, and leave out this test's own lists.
    let lists = 0
    await waitFor('an empty line', async () => {
      lists++
      return (await tickets(namespace)).length === 0
    })
    const after = await leaseRequests()

    expect(order.map((w) => w.name)).toEqual(line.map((w) => w.name))
    expectIncreasing(tokens(order))
    // Ten handovers: holder → waiter-1 → … → waiter-10, and waiter-10's release ends the drain.
    const handovers = line.length
    const sent = sentBetween(before, after, { LIST: lists })
    const requests = Object.values(sent).reduce((sum, n) => sum + n, 0)
    console.info(
      `fair drain: ${handovers} handovers in ${Math.round(drainMs)} ms, ${requests} lease requests ` +
        `(${(requests / handovers).toFixed(2)} per handover): ${JSON.stringify(sent)}; ` +
        `watches ended: ${(after.byVerb.get('WATCH') ?? 0) - (before.byVerb.get('WATCH') ?? 0)}`,
    )
    // A release, the next one's taking write and its ticket's delete: nobody else in line writes, reads
    // or retries, however long the line.
    expect(requests / handovers).toBeLessThanOrEqual(4)
  }, 80_000)

  it('a waiter killed in line is passed over within its ticket duration plus the grace, and the rest keep their order', async () => {
    const namespace = await createNamespace('sdk-fair-kill')
    const holder = startWorker(namespace, 'holder', { renew: true })
    await holder.next('acquired')
    const line: Worker[] = []
    for (let i = 1; i <= 5; i++) line.push((await arrive(namespace, `waiter-${i}`)).worker)
    const [first, second, victim, ...behind] = line as [Worker, Worker, Worker, ...Worker[]]
    const victimTicket = (await tickets(namespace)).find((t) =>
      t.holderIdentity.startsWith(`${victim.name}_`),
    )
    expect(victimTicket).toBeDefined()

    victim.child.kill('SIGKILL')
    // Worker events carry the wall clock of this same machine.
    const killedAt = Date.now()
    const rest = [first, second, ...behind]
    const drained = drain(rest, DEAD_TICKET_MS + 30_000)
    holder.send('release')
    const order = await drained
    const acquiredAt = (w: Worker) => w.events.find((e) => e.event === 'acquired')?.t ?? Number.NaN

    expect(order.map((w) => w.name)).toEqual(rest.map((w) => w.name))
    expectIncreasing(tokens(order))
    // The one right behind the dead waiter waited for its ticket to be judged dead, and no longer: the
    // waiter had renewed it at most once since the kill's moment (renewals sent before it died).
    const passedAfterMs = acquiredAt(behind[0] as Worker) - killedAt
    expect(passedAfterMs).toBeLessThanOrEqual(DEAD_TICKET_MS + ROUND_TRIP_MS)
    // And not before: its last renewal was at most one renewal period (half of its 15 s) before the kill.
    expect(passedAfterMs).toBeGreaterThanOrEqual(DEAD_TICKET_MS - DEFAULTS.ticketDuration * 500)
    // Passed over, not removed: no controller runs, and the dead waiter's ticket is still there.
    expect((await tickets(namespace)).map((t) => t.name)).toContain(victimTicket?.name)
  }, 80_000)
})
