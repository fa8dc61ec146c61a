import { afterEach, describe, expect, it } from 'vitest'
import {
  ControllerProcess,
  killControllers,
  namespacedArgs,
} from '../../controller/testing/controller-process.ts'
import {
  createKubernetesLeaseStore,
  createLocks,
  isTicket,
  type LeaseEvent,
  type LeaseRecord,
  type Lock,
  MANAGED_BY_SELECTOR,
  WatchExpiredError,
} from '../../sdk/internal.ts'
import { adminKubeConfig, createNamespace, kubeconfigPath } from './support.ts'

const RUN_MS = 62_000

afterEach(async () => {
  await killControllers()
})

/** Records every change of the namespace's kube-locks leases until `signal` aborts. */
async function recordChanges(namespace: string, signal: AbortSignal, seen: LeaseEvent[]): Promise<void> {
  const store = createKubernetesLeaseStore(adminKubeConfig())
  try {
    let resourceVersion = (await store.list(namespace, { labelSelector: MANAGED_BY_SELECTOR, signal }))
      .resourceVersion
    while (!signal.aborted) {
      try {
        await store.watch(
          namespace,
          { resourceVersion, labelSelector: MANAGED_BY_SELECTOR, signal },
          (event) => {
            resourceVersion = event.type === 'BOOKMARK' ? event.resourceVersion : event.lease.resourceVersion
            seen.push(event)
          },
        )
      } catch (error) {
        if (signal.aborted) break
        // Losing history would hide a change from the check below: fail rather than re-list.
        if (error instanceof WatchExpiredError) throw error
      }
    }
  } finally {
    await store.close?.()
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('controller renew/GC race', () => {
  it(`never frees or deletes a renewed lease while it frees and deletes as fast as it can (${RUN_MS / 1000} s)`, async () => {
    const ns = await createNamespace('ctl-race')
    // Grace 0 and retention 0: the controller frees at the earliest moment the rule allows and deletes
    // every free lease at once, so each release races the next acquire and each renewal the expiry check.
    const controller = new ControllerProcess(
      'race',
      namespacedArgs(
        kubeconfigPath(),
        ns,
        '--grace',
        '0',
        '--retention',
        '0',
        '--leader-election-name',
        'race-leader',
      ),
    )
    await controller.baseUrl()
    const stop = new AbortController()
    const changes: LeaseEvent[] = []
    const watching = recordChanges(ns, stop.signal, changes)
    const locks = createLocks({ kubeConfig: adminKubeConfig(), namespace: ns, identity: 'racer' })
    const released = new Set<string>()
    const lostWhileHeld: string[] = []
    let acquisitions = 0
    const deadline = performance.now() + RUN_MS

    const hold = async (lock: Lock, ms: number) => {
      const until = performance.now() + ms
      while (performance.now() < until) {
        if (lock.signal.aborted) {
          lostWhileHeld.push(`${lock.name} (${lock.holder}): ${String(lock.signal.reason)}`)
          return
        }
        await sleep(Math.min(100, until - performance.now()))
      }
      released.add(lock.holder)
      await lock.release()
    }
    // Holders that keep their lock for the whole run, renewing every expires/3.
    const steady = Array.from({ length: 4 }, async (_, i) => {
      const lock = await locks.acquire(`steady-${i}`, { expires: 5, renew: true, timeout: 30 })
      acquisitions++
      await hold(lock, deadline - performance.now())
    })
    // Holders that take, briefly hold and release their lock over and over: each release makes the
    // lease free, which the controller deletes while the next acquire may already be under way.
    const churn = Array.from({ length: 6 }, async (_, i) => {
      while (performance.now() < deadline) {
        const lock = await locks.acquire(`churn-${i % 3}`, { expires: 5, renew: true, timeout: 30 })
        acquisitions++
        await hold(lock, Math.random() * 300)
        await sleep(Math.random() * 100)
      }
    })
    try {
      await Promise.all([...steady, ...churn])
    } finally {
      await locks.close()
      await sleep(1_000)
      stop.abort()
      await watching
    }

    expect(lostWhileHeld).toEqual([])
    // Every lease that went from held to free was released by its holder; every deleted lease was free.
    const last = new Map<string, LeaseRecord>()
    const violations: string[] = []
    for (const event of changes) {
      if (event.type === 'BOOKMARK') continue
      const { lease } = event
      // Waiters' tickets are deleted while they name their waiter, by the waiter once it acquires (or
      // by the controller once it is gone): they are not locks.
      if (isTicket(lease)) continue
      const before = last.get(lease.name)
      if (event.type === 'DELETED') {
        if (lease.holderIdentity !== undefined)
          violations.push(`deleted while held by ${lease.holderIdentity}`)
        last.delete(lease.name)
        continue
      }
      const wasHeldBy = before?.uid === lease.uid ? before.holderIdentity : undefined
      if (wasHeldBy !== undefined && lease.holderIdentity === undefined && !released.has(wasHeldBy)) {
        violations.push(`${lease.name} freed while ${wasHeldBy} still held it`)
      }
      last.set(lease.name, lease)
    }
    expect(violations).toEqual([])
    const deleted = await controller.metric('kube_locks_deleted_total')
    const conflicts = await controller.metric('kube_locks_reconcile_conflicts_total')
    const reclaimed = await controller.metric('kube_locks_reclaimed_total')
    console.info(
      `race: ${acquisitions} acquisitions, ${changes.length} lease changes, ${deleted} deletes, ` +
        `${conflicts} lost preconditions, ${reclaimed} reclaims`,
    )
    expect(reclaimed).toBe(0)
    expect(deleted).toBeGreaterThan(20)
    expect(changes.filter((event) => event.type === 'DELETED').length).toBeGreaterThanOrEqual(deleted)
  }, 150_000)
})
