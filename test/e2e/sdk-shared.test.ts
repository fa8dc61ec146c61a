import { afterEach, describe, expect, it } from 'vitest'
import {
  compareResourceVersions,
  createKubernetesLeaseStore,
  HOLDER_OF_LABEL,
  HOLDS_ANNOTATION,
  holderKeyFor,
  holderSelector,
  LIMIT_ANNOTATION,
  LOCK_NAME_ANNOTATION,
  leaseNameFor,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  MODE_ANNOTATION,
  NODE_ANNOTATION,
  POD_ANNOTATION,
  SERVICE_ANNOTATION,
} from '../../sdk/internal.ts'
import { checkHistory, describeViolations } from '../faults/checker.ts'
import type { Hold, HoldMode } from '../faults/history.ts'
import {
  killSdkWorkers,
  type SdkWorker,
  type SdkWorkerEvent,
  startSdkWorker,
  startTogether,
  WORKER_NODE,
  WORKER_SERVICE,
} from './fixtures/sdk-worker-process.ts'
import { adminKubeConfig, createNamespace, kubectl } from './support.ts'

// Semaphores and shared locks across processes on a real API server. Every holder is a process of its
// own that reports when it got in and when it stopped using its hold, stamped on the host's monotonic
// clock, which all processes share; the fault suite's checker judges those holds (at most `limit` at
// once, a writer alone, fencing tokens in order), and each test also checks that holds did happen
// together: a semaphore or a read lock that served one holder at a time would pass the exclusion checks.

afterEach(killSdkWorkers)

/**
 * The holds a worker reported: from `acquired` until it stopped using the hold (`releasing`) or its
 * signal fired, whichever it reported first; open if neither.
 */
function holdsOf(worker: SdkWorker, lock: string, mode: HoldMode): Hold[] {
  const holds: Hold[] = []
  let open: SdkWorkerEvent | undefined
  const close = (ended: SdkWorkerEvent | undefined) => {
    if (open === undefined) return
    holds.push({
      lock,
      mode,
      worker: worker.pod,
      holder: open.holder ?? '',
      token: open.token ?? '',
      start: open.mono,
      end: ended?.mono,
      endedBy: ended === undefined ? undefined : ended.event === 'releasing' ? 'released' : ended.reason,
    })
    open = undefined
  }
  for (const event of worker.events) {
    if (event.event === 'acquired') {
      close(undefined)
      open = event
    } else if ((event.event === 'releasing' || event.event === 'aborted') && event.token === open?.token) {
      close(event)
    }
  }
  close(undefined)
  return holds
}

/**
 * Judges the holds with the fault suite's checker. All stamps come from one clock (no conversion
 * between timebases), so no tolerance: holds that overlap at all count as together.
 */
function judge(holds: readonly Hold[]) {
  const result = checkHistory({ holds, writes: [], counters: {} }, { toleranceMs: 0 })
  expect(result.violations, describeViolations(result.violations)).toEqual([])
  return result
}

function failures(all: readonly SdkWorker[]): SdkWorkerEvent[] {
  return all.flatMap((worker) => worker.events.filter((e) => e.event === 'failed'))
}

async function holderRecords(namespace: string, leaseName: string) {
  const store = createKubernetesLeaseStore(adminKubeConfig())
  try {
    return (await store.list(namespace, { labelSelector: holderSelector(leaseName) })).items
  } finally {
    await store.close?.()
  }
}

describe('semaphores and shared locks across processes', () => {
  it('six processes entering a semaphore of limit 2 again and again: never more than 2 in, and 2 at once', async () => {
    const namespace = await createNamespace('sdk-semaphore')
    const lock = 'partner-api'
    const limit = 2
    const rounds = 3
    const contenders = await startTogether(
      namespace,
      Array.from({ length: 6 }, () => ({ lock, rounds, holdMs: 300, acquire: { limit, timeout: 60 } })),
    )
    await Promise.all(contenders.map((worker) => worker.exitsWithin(60_000)))
    expect(failures(contenders)).toEqual([])
    for (const worker of contenders) expect(await worker.exit).toBe(0)

    const holds = contenders.flatMap((worker) => holdsOf(worker, lock, { kind: 'semaphore', limit }))
    expect(holds).toHaveLength(6 * rounds)
    expect(holds.every((h) => h.end !== undefined)).toBe(true)
    const result = judge(holds)
    // Not one at a time: the semaphore lets `limit` in together.
    expect(result.peaks[lock]).toBe(limit)
    // Each holder had a record of its own, and every release deleted it.
    expect(new Set(holds.map((h) => h.holder)).size).toBe(holds.length)
    expect(await holderRecords(namespace, leaseNameFor(lock))).toEqual([])
  }, 90_000)

  it('four readers and two writers on one name: a writer is alone, readers are in together, writers’ tokens exceed every earlier one', async () => {
    const namespace = await createNamespace('sdk-shared')
    const lock = 'accounts/42'
    const rounds = 3
    const readers = Array.from({ length: 4 }, () => ({
      lock,
      rounds,
      holdMs: 300,
      acquire: { shared: true, timeout: 60 },
    }))
    const writers = Array.from({ length: 2 }, () => ({ lock, rounds, holdMs: 100, acquire: { timeout: 60 } }))
    const all = await startTogether(namespace, [...readers, ...writers])
    await Promise.all(all.map((worker) => worker.exitsWithin(60_000)))
    expect(failures(all)).toEqual([])
    for (const worker of all) expect(await worker.exit).toBe(0)

    const readerHolds = all.slice(0, 4).flatMap((w) => holdsOf(w, lock, { kind: 'shared' }))
    const writerHolds = all.slice(4).flatMap((w) => holdsOf(w, lock, { kind: 'exclusive' }))
    expect(readerHolds).toHaveLength(4 * rounds)
    expect(writerHolds).toHaveLength(2 * rounds)
    // No writer overlaps anyone; tokens are ordered in every pair with a writer in it.
    judge([...readerHolds, ...writerHolds])
    // Readers were in together.
    expect(judge(readerHolds).peaks[lock]).toBeGreaterThanOrEqual(2)
    // Every writer's token is greater than every token issued before it, the readers' included.
    const everyone = [...readerHolds, ...writerHolds]
    for (const writer of writerHolds) {
      for (const earlier of everyone.filter((h) => h.start < writer.start)) {
        expect(
          compareResourceVersions(earlier.token, writer.token),
          `${earlier.worker} (token ${earlier.token}) began before writer ${writer.worker} (token ${writer.token})`,
        ).toBe(-1)
      }
    }
    expect(await holderRecords(namespace, leaseNameFor(lock))).toEqual([])
  }, 90_000)

  it('a limit or mode other than the one in use fails at once with LOCK_MODE_CONFLICT; once nobody holds the name, another limit works', async () => {
    const namespace = await createNamespace('sdk-mode')
    const lock = 'licences'
    const holder = startSdkWorker(namespace, { lock, hold: true, acquire: { limit: 2 } })
    await holder.next('acquired')

    const other = startSdkWorker(namespace, { lock, hold: true, acquire: { limit: 3, timeout: 20 } })
    const otherLimit = await other.next('failed')
    expect(otherLimit).toMatchObject({
      code: 'LOCK_MODE_CONFLICT',
      name: 'LockModeConflictError',
      requested: 'semaphore (limit 3)',
      inUse: 'semaphore (limit 2)',
    })
    expect(otherLimit.message).toContain('semaphore (limit 3)')
    expect(otherLimit.message).toContain('semaphore (limit 2)')

    const reader = startSdkWorker(namespace, { lock, hold: true, acquire: { shared: true, timeout: 20 } })
    expect(await reader.next('failed')).toMatchObject({
      code: 'LOCK_MODE_CONFLICT',
      requested: 'shared lock',
      inUse: 'semaphore (limit 2)',
    })

    holder.send('release')
    await holder.next('released')
    const later = startSdkWorker(namespace, { lock, hold: true, acquire: { limit: 3, timeout: 20 } })
    await later.next('acquired')
    const [record] = await holderRecords(namespace, leaseNameFor(lock))
    expect(record?.annotations[LIMIT_ANNOTATION]).toBe('3')
    for (const worker of [holder, other, reader, later]) worker.send('close')
    await Promise.all([holder, other, reader, later].map((worker) => worker.exitsWithin(20_000)))
  }, 90_000)

  it('kubectl shows each holder as a lease under the lock, with the documented labels and annotations', async () => {
    const namespace = await createNamespace('sdk-records')
    const lock = 'partner-api'
    const holders = [1, 2].map(() =>
      startSdkWorker(namespace, { lock, hold: true, acquire: { limit: 2, expires: 15 } }),
    )
    // A lease name longer than a label value: the holder-of label is a hash of it.
    const long = `reports-${'x'.repeat(60)}`
    const longHolder = startSdkWorker(namespace, { lock: long, hold: true, acquire: { shared: true } })
    const acquired = await Promise.all([...holders, longHolder].map((worker) => worker.next('acquired')))

    const listed = await kubectl([
      'get',
      'leases',
      '-n',
      namespace,
      '-l',
      `${HOLDER_OF_LABEL}=${lock}`,
      '-o',
      'json',
    ])
    expect(listed.code, listed.stderr).toBe(0)
    const items = (JSON.parse(listed.stdout) as { items: LeaseJson[] }).items
    expect(items.map((lease) => lease.metadata.name).sort()).toEqual(
      acquired
        .slice(0, 2)
        .map((a) => a.leaseName)
        .sort(),
    )
    for (const [i, worker] of holders.entries()) {
      const report = acquired[i] as SdkWorkerEvent
      const lease = items.find((item) => item.metadata.name === report.leaseName)
      expect(lease?.metadata.name).toMatch(/^partner-api\.h-[a-z2-7]{16}$/)
      expect(lease?.metadata.labels).toEqual({
        [MANAGED_BY_LABEL]: MANAGED_BY_VALUE,
        [HOLDER_OF_LABEL]: lock,
      })
      expect(lease?.metadata.annotations).toEqual({
        [LOCK_NAME_ANNOTATION]: lock,
        [HOLDS_ANNOTATION]: lock,
        [MODE_ANNOTATION]: 'semaphore',
        [LIMIT_ANNOTATION]: '2',
        [SERVICE_ANNOTATION]: WORKER_SERVICE,
        [POD_ANNOTATION]: worker.pod,
        [NODE_ANNOTATION]: WORKER_NODE,
      })
      expect(lease?.spec.holderIdentity).toBe(report.holder)
      expect(lease?.spec.leaseDurationSeconds).toBe(15)
      expect(lease?.spec.renewTime).toMatch(/\.\d{6}Z$/)
    }

    // The lock's own lease is free and carries the mark; `kubectl get leases` lists its holders under it.
    const names = await kubectl(['get', 'leases', '-n', namespace, '-o', 'name'])
    expect(names.code, names.stderr).toBe(0)
    const ours = names.stdout
      .split('\n')
      .filter((line) => line.startsWith(`lease.coordination.k8s.io/${lock}`))
      .map((line) => line.slice(line.indexOf('/') + 1))
    expect(ours).toEqual([
      lock,
      ...acquired
        .slice(0, 2)
        .map((a) => a.leaseName as string)
        .sort(),
    ])
    const own = await kubectl(['get', 'lease', lock, '-n', namespace, '-o', 'json'])
    const lockLease = JSON.parse(own.stdout) as LeaseJson
    expect(lockLease.spec.holderIdentity).toBeUndefined()
    expect(lockLease.metadata.annotations).toMatchObject({
      [LOCK_NAME_ANNOTATION]: lock,
      [MODE_ANNOTATION]: 'semaphore',
      [LIMIT_ANNOTATION]: '2',
    })
    // A holder's token is the larger of its record's resourceVersion (no renewal yet) and that of the
    // lock's lease as its check read it (unchanged since the mark).
    for (const report of acquired.slice(0, 2)) {
      const record = items.find((item) => item.metadata.name === report.leaseName)
      const own = record?.metadata.resourceVersion ?? ''
      const read = lockLease.metadata.resourceVersion
      const larger = compareResourceVersions(own, read) >= 0 ? own : read
      expect(report.token).toBe(larger)
    }

    const longLease = leaseNameFor(long)
    expect(holderKeyFor(longLease)).not.toBe(longLease)
    const hashed = await kubectl([
      'get',
      'leases',
      '-n',
      namespace,
      '-l',
      `${HOLDER_OF_LABEL}=${holderKeyFor(longLease)}`,
      '-o',
      'json',
    ])
    const [longRecord, ...more] = (JSON.parse(hashed.stdout) as { items: LeaseJson[] }).items
    expect(more).toEqual([])
    expect(longRecord?.metadata.name).toBe(acquired[2]?.leaseName)
    expect(longRecord?.metadata.annotations).toMatchObject({
      [HOLDS_ANNOTATION]: longLease,
      [LOCK_NAME_ANNOTATION]: long,
      [MODE_ANNOTATION]: 'shared',
    })
    expect(longRecord?.metadata.annotations?.[LIMIT_ANNOTATION]).toBeUndefined()

    // A release deletes the holder's record and nothing else.
    const [first, second] = holders as [SdkWorker, SdkWorker]
    first.send('release')
    await first.next('released')
    const after = await kubectl([
      'get',
      'leases',
      '-n',
      namespace,
      '-l',
      `${HOLDER_OF_LABEL}=${lock}`,
      '-o',
      'name',
    ])
    expect(after.stdout.trim()).toBe(`lease.coordination.k8s.io/${acquired[1]?.leaseName}`)
    for (const worker of [first, second, longHolder]) worker.send('close')
    await Promise.all([first, second, longHolder].map((worker) => worker.exitsWithin(20_000)))
  }, 90_000)
})

interface LeaseJson {
  readonly metadata: {
    readonly name: string
    readonly resourceVersion: string
    readonly labels?: Record<string, string>
    readonly annotations?: Record<string, string>
  }
  readonly spec: {
    readonly holderIdentity?: string
    readonly leaseDurationSeconds?: number
    readonly renewTime?: string
  }
}
