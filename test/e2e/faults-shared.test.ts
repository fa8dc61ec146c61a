import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createKubernetesLeaseStore,
  holderSelector,
  type LeaseStore,
  leaseNameFor,
} from '../../sdk/internal.ts'
import { FaultRun, scaled, type Worker } from '../faults/coordinator.ts'
import type { Report, WorkerAcquireOptions } from '../faults/protocol.ts'
import { TcpProxy } from '../faults/tcp-proxy.ts'
import { toLocal } from '../faults/timebase.ts'
import { adminKubeConfig, createNamespace, kubeconfigPath, waitFor } from './support.ts'

// Semaphore holders that crash, pause and lose the network, on the real API server. Every holder is a
// fault worker; the checker judges each hold by the holder's own validity (its signal, its exit, its
// documented bound while stopped) and fails a run in which more than `limit` holds of one name were
// valid at once (`over-limit`), or a writer was not alone (`overlap`). ROUND_TRIP_MS is the allowance
// for one API round trip plus reporting on a loaded machine.

const ROUND_TRIP_MS = 3_000
const GRACE_S = 1
const LIMIT = 2

let run: FaultRun | undefined
let proxy: TcpProxy | undefined
let store: LeaseStore | undefined
let dir: string | undefined

afterEach(async () => {
  await run?.close()
  await proxy?.close()
  await store?.close?.()
  if (dir) rmSync(dir, { recursive: true, force: true })
  run = undefined
  proxy = undefined
  store = undefined
  dir = undefined
})

async function setUp(prefix: string, requestTimeout = 5) {
  const namespace = await createNamespace(prefix)
  run = new FaultRun({
    kubeconfig: kubeconfigPath(),
    namespace,
    retryInterval: 0.2,
    requestTimeout,
    expiryGrace: GRACE_S,
  })
  store = createKubernetesLeaseStore(adminKubeConfig())
  return { r: run, namespace, leases: store }
}

/** A proxy in front of the API server, and a kubeconfig that goes through it. */
async function startProxy(): Promise<{ p: TcpProxy; proxied: string }> {
  const server = new URL(adminKubeConfig().getCurrentCluster()?.server ?? '')
  const p = await TcpProxy.start({ host: server.hostname, port: Number(server.port) })
  proxy = p
  dir = mkdtempSync(join(tmpdir(), 'kube-locks-faults-shared-'))
  return { p, proxied: p.kubeconfigFor(kubeconfigPath(), join(dir, 'kubeconfig')) }
}

type StoreWrite = Extract<Report, { type: 'store-write' }>

/** The creates and updates a worker's store sent for holder records of `lock`, in the order reported. */
function recordWrites(worker: Worker, lock: string): StoreWrite[] {
  return worker.received
    .map((m) => m.report)
    .filter((m): m is StoreWrite => m.type === 'store-write' && m.holds === leaseNameFor(lock))
}

/** Takes a slot of `lock` on each of `workers` in turn; resolves with their `acquired` reports. */
async function takeSlots(workers: readonly Worker[], lock: string, options: WorkerAcquireOptions) {
  const taken = []
  for (const worker of workers) {
    worker.send({ type: 'acquire', lock, options })
    taken.push(await worker.next('acquired'))
  }
  return taken
}

/** Asks `worker` for a slot, and waits until its record is in line (created and answered). */
async function queue(worker: Worker, lock: string, options: WorkerAcquireOptions): Promise<void> {
  worker.send({ type: 'acquire', lock, options })
  await worker.next(
    'store-write',
    (w) => w.holds === leaseNameFor(lock) && w.op === 'create' && w.outcome === 'applied',
  )
}

async function leftoverRecords(namespace: string, lock: string) {
  const list = await store?.list(namespace, { labelSelector: holderSelector(leaseNameFor(lock)) })
  return (list?.items ?? []).map((record) => `${record.name} (${record.holderIdentity ?? 'free'})`)
}

describe('faults: semaphore holders that crash and pause', () => {
  it('SIGKILL of a slot holder: a waiter takes its slot within expires + grace, never more than the limit', async () => {
    const { r, namespace } = await setUp('faults-sem-kill')
    const lock = 'slots'
    const expires = 4
    const options = { expires, timeout: 60, limit: LIMIT, renew: true }
    const [victim, other, waiter] = await Promise.all([
      r.spawn('victim'),
      r.spawn('other'),
      r.spawn('waiter'),
    ])
    const [held] = await takeSlots([victim, other], lock, options)
    await queue(waiter, lock, options)
    expect(waiter.received.some((m) => m.report.type === 'acquired')).toBe(false)

    const killedAt = performance.now()
    await victim.kill()
    r.fault()
    const taken = await waiter.next('acquired', () => true, 60_000)
    // The victim's last write that may have applied (a renewal sent before the kill whose report was
    // lost can only be later, which only moves the earliest takeover later).
    const lastWrite = recordWrites(victim, lock)
      .filter((w) => w.holder === held?.report.holder && w.outcome !== 'refused')
      .at(-1)
    expect(lastWrite).toBeDefined()
    const lastWriteAt = toLocal(lastWrite?.writeSent ?? Number.NaN)
    // The waiter counts the victim's record out only once its own clock saw it unchanged for its
    // duration plus the grace: not before that after the victim's last write, and a round trip after
    // the kill at the latest.
    expect(taken.at - lastWriteAt).toBeGreaterThanOrEqual((expires + GRACE_S) * 1000)
    expect(taken.at - killedAt).toBeLessThanOrEqual((expires + GRACE_S) * 1000 + ROUND_TRIP_MS)
    // The other holder was in all along: the waiter took the dead one's slot, not a free one.
    expect(r.holds().find((h) => h.worker === 'other')?.end).toBeUndefined()

    await Promise.all([other.stop(), waiter.stop()])
    const result = r.assertSafe('semaphore: slot holder killed')
    expect(result.peaks[lock]).toBe(LIMIT)
    // The dead holder's record stays until it is reclaimed; the others released theirs.
    const [left, ...more] = await leftoverRecords(namespace, lock)
    expect(more).toEqual([])
    expect(left).toContain(held?.report.holder)
  })

  it('SIGSTOP of a slot holder past its expiry, then SIGCONT: its signal fired, no late renewal, never more than the limit', async () => {
    const { r } = await setUp('faults-sem-stop')
    const lock = 'slots'
    const options = { expires: 3, timeout: 60, limit: LIMIT, renew: true }
    const [paused, other, waiter] = await Promise.all([
      r.spawn('paused'),
      r.spawn('other'),
      r.spawn('waiter'),
    ])
    const [held] = await takeSlots([paused, other], lock, options)
    await queue(waiter, lock, options)

    paused.pause()
    r.fault()
    const stoppedAt = paused.stoppedSince ?? performance.now()
    await waiter.next('acquired', () => true, 60_000)
    const from = paused.received.length
    paused.resume()
    const aborted = await paused.next('aborted', () => true, 30_000, from)
    expect(aborted.report.error.code).toBe('LOCK_LOST')
    // Every timer that was overdue at SIGCONT has run, and every write sent until then has settled.
    await paused.settle()
    const late = recordWrites(paused, lock).filter(
      (w) => w.holder === held?.report.holder && toLocal(w.writeSent) >= stoppedAt,
    )
    expect(late, 'renewals of the stopped holder’s record sent after SIGCONT').toEqual([])
    // Its hold ended at its bound while it was stopped, before the waiter got in.
    const judged = r.holds().find((h) => h.worker === 'paused')
    expect(judged?.endedBy).toMatch(/^deadline while stopped/)

    await Promise.all([paused.stop(), other.stop(), waiter.stop()])
    const result = r.assertSafe('semaphore: slot holder paused past its expiry')
    expect(result.peaks[lock]).toBe(LIMIT)
  })
})

describe('faults: the network of a semaphore holder or waiter', () => {
  it('blackhole of a slot holder: its signal fires before a waiter takes its slot', async () => {
    const { r, namespace } = await setUp('faults-sem-blackhole', 2)
    const { p, proxied } = await startProxy()
    const lock = 'slots'
    const options = { expires: 3, timeout: 60, limit: LIMIT, renew: true }
    const [cut, other, waiter] = await Promise.all([
      r.spawn('proxied-holder', { kubeconfig: proxied }),
      r.spawn('other'),
      r.spawn('waiter'),
    ])
    await takeSlots([cut, other], lock, options)
    await queue(waiter, lock, options)
    p.mode = 'blackhole'
    r.fault()
    const lost = await cut.next('aborted', () => true, 30_000)
    expect(lost.report.error.reason).toMatch(/renewal-failed|expired/)
    await waiter.next('acquired', () => true, 60_000)
    const holds = r.holds()
    const lostAt = holds.find((h) => h.worker === 'proxied-holder')?.end ?? Number.POSITIVE_INFINITY
    const takenAt = holds.find((h) => h.worker === 'waiter')?.start ?? 0
    expect(lostAt).toBeLessThan(takenAt)
    p.mode = 'pass'
    await Promise.all([cut.stop(), other.stop(), waiter.stop()])
    r.assertSafe('semaphore: blackhole of a slot holder')
    expect(await leftoverRecords(namespace, lock)).toEqual([])
  })

  it('reset of a waiter’s connection: an announcement applies unanswered; the waiter still gets in, and leaves no record behind', async () => {
    const { r, namespace, leases } = await setUp('faults-sem-reset', 2)
    const { p, proxied } = await startProxy()
    const lock = 'slots'
    const options = { expires: 3, timeout: 60, limit: LIMIT, renew: true }
    const [first, second, waiter] = await Promise.all([
      r.spawn('first'),
      r.spawn('second'),
      r.spawn('proxied-waiter', { kubeconfig: proxied }),
    ])
    await takeSlots([first, second], lock, options)
    // The proxy resets a connection when the server answers: on a new connection that is the TLS
    // handshake, before any request. A lock taken and released first leaves the waiter a connection
    // open, on which its first request after the switch reaches the server and applies.
    waiter.send({ type: 'acquire', lock: 'warm-up', options: { expires: 3, timeout: 10 } })
    await waiter.next('acquired')
    waiter.send({ type: 'release', lock: 'warm-up' })
    await waiter.next('released')
    p.mode = 'reset'
    r.fault()
    const from = waiter.received.length
    waiter.send({ type: 'acquire', lock, options })
    const isStray = (record: { holderIdentity?: string | undefined }) =>
      record.holderIdentity?.startsWith(`${waiter.id}_`) === true
    const strays = await waitFor(
      'an announcement of the waiter that applied unanswered, and one more attempt after it',
      async () => {
        const unknown = recordWrites(waiter, lock).filter((w) => w.op === 'create' && w.outcome === 'unknown')
        const list = await leases.list(namespace, { labelSelector: holderSelector(leaseNameFor(lock)) })
        const found = list.items.filter(isStray)
        return unknown.length >= 2 && found.length > 0 ? found : undefined
      },
      { timeoutMs: 30_000 },
    )
    expect(p.resets).toBeGreaterThan(0)
    p.mode = 'pass'
    first.send({ type: 'release', lock })
    await first.next('released')
    const taken = await waiter.next('acquired', () => true, 60_000, from)
    expect(taken.report.holder).toBe(strays[0]?.holderIdentity)
    await Promise.all([first.stop(), second.stop(), waiter.stop()])
    r.assertSafe('semaphore: reset of a waiter')
    // The records its unanswered creates left are this acquisition's to delete: none may stay, held by
    // an identity nobody renews, counting as a holder for everyone else.
    expect(await leftoverRecords(namespace, lock)).toEqual([])
  })

  it(
    'five workers contending for a semaphore while one’s connection is delayed, cut and reset: never more than the limit, everyone gets in',
    async () => {
      const { r } = await setUp('faults-sem-contention', 2)
      const { p, proxied } = await startProxy()
      const lock = 'pool'
      const rounds = scaled(5, 30)
      const plan = {
        locks: [lock],
        acquire: { expires: 3, timeout: 120, limit: LIMIT },
        pauseMs: [20, 200] as const,
        rounds,
      }
      p.latencyMs = 150
      const workers = await Promise.all([
        r.spawn('proxied', { kubeconfig: proxied, contend: plan }),
        ...Array.from({ length: 4 }, (_, i) => r.spawn(`direct${i}`, { contend: plan })),
      ])
      const modes = ['latency', 'blackhole', 'reset', 'pass'] as const
      const end = performance.now() + scaled(6_000, 90_000)
      while (performance.now() < end && workers.some((w) => w.alive)) {
        p.mode = modes[Math.floor(r.random() * modes.length)] ?? 'pass'
        r.fault()
        await new Promise((resolve) => setTimeout(resolve, 300 + r.random() * 700))
      }
      p.mode = 'pass'
      await Promise.all(workers.map((w) => w.next('done', () => true, scaled(120_000, 600_000))))
      await waitFor('workers to exit', () => workers.every((w) => !w.alive), { timeoutMs: 30_000 })
      const result = r.assertSafe('semaphore: contention with network faults')
      const failed = workers.flatMap((w) => w.received.filter((m) => m.report.type === 'failed'))
      expect(failed.map((m) => JSON.stringify(m.report))).toEqual([])
      expect(result.holds).toBe(5 * rounds)
      // Whether two holds overlap here depends on the timing of the faults (sdk-shared shows the peak
      // reaching the limit); what this run must show is that it never goes beyond it.
      expect(result.peaks[lock]).toBeLessThanOrEqual(LIMIT)
      expect(r.faults).toBeGreaterThanOrEqual(2)
      console.info(`semaphore under network faults: ${result.holds} holds, ${r.faults} proxy switches`)
    },
    scaled(180_000, 900_000),
  )
})

describe('faults: readers and writers', () => {
  it(
    'four readers and two writers on one name while holders are killed and paused at random: a writer is alone, its writes are never lost',
    async () => {
      const { r } = await setUp('faults-rw')
      const lock = 'ledger'
      // The writers race (`fair: false`): fair writers that follow each other without a pause keep the
      // readers out (writer preference, as documented); racing ones let readers in between, so both
      // sides hold under the faults. The fair line of readers and writers is in sdk-shared.test.ts.
      const plan = (shared: boolean) => ({
        locks: [lock],
        acquire: { expires: 2, timeout: 60, shared, fair: shared },
        pauseMs: [20, 200] as const,
        rounds: 1_000_000,
      })
      let next = 0
      const spawn = (shared: boolean) =>
        r.spawn(`${shared ? 'reader' : 'writer'}${next++}`, { contend: plan(shared) })
      const live: Worker[] = await Promise.all([true, true, true, true, false, false].map(spawn))
      const starting: Promise<Worker>[] = []
      const counts = { kill: 0, pause: 0 }
      const end = performance.now() + scaled(8_000, 120_000)
      while (performance.now() < end) {
        await new Promise((resolve) => setTimeout(resolve, 300 + r.random() * 700))
        const index = Math.floor(r.random() * live.length)
        const victim = live[index] as Worker
        if (r.random() < 0.4) {
          live.splice(index, 1)
          await victim.kill()
          r.fault()
          counts.kill++
          const shared = victim.config.contend?.acquire.shared === true
          starting.push(
            spawn(shared).then((w) => {
              live.push(w)
              return w
            }),
          )
        } else {
          victim.pause()
          r.fault()
          counts.pause++
          // Often past its expiry: its hold ends at its bound while it is stopped.
          await new Promise((resolve) => setTimeout(resolve, 300 + r.random() * 2500))
          victim.resume()
        }
      }
      await Promise.all(starting)
      await Promise.all(live.map((w) => w.stop(90_000)))
      const result = r.assertSafe('readers and writers with kills and pauses')
      expect(counts.kill + counts.pause).toBeGreaterThanOrEqual(3)
      const reads = r.holds().filter((h) => h.mode?.kind === 'shared').length
      expect(reads).toBeGreaterThan(0)
      expect(result.committed).toBeGreaterThan(0)
      console.info(
        `readers and writers under faults: ${result.holds} holds, ${reads} of them shared (peak ` +
          `${result.peaks[lock]} at once), ${result.committed} writes committed, ${result.fenced} fenced; ` +
          `faults ${JSON.stringify(counts)}`,
      )
    },
    scaled(120_000, 600_000),
  )
})
