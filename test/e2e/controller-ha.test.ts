import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  ControllerProcess,
  killControllers,
  namespacedArgs,
} from '../../controller/testing/controller-process.ts'
import { managedLease } from '../../controller/testing/leases.ts'
import { createKubernetesLeaseStore, type LeaseStore } from '../../sdk/internal.ts'
import { adminKubeConfig, createNamespace, kubeconfigPath, waitFor } from './support.ts'

const ELECTION = 'kube-locks-controller'
let store: LeaseStore

beforeEach(() => {
  store = createKubernetesLeaseStore(adminKubeConfig())
})

afterEach(async () => {
  await killControllers()
  await store.close?.()
})

function replica(name: string, namespace: string): ControllerProcess {
  return new ControllerProcess(
    name,
    namespacedArgs(
      kubeconfigPath(),
      namespace,
      '--leader-election-expires',
      '4',
      '--grace',
      '0.5',
      '--retention',
      '600',
    ),
  )
}

/** The replica named in the election lease's holder, once one holds it. */
async function leaderOf(
  namespace: string,
  replicas: readonly ControllerProcess[],
): Promise<ControllerProcess> {
  return waitFor(
    'a leader to be elected',
    async () => {
      const lease = await store.get(namespace, ELECTION)
      const holder = lease?.holderIdentity
      return replicas.find((r) => holder?.startsWith(`${r.name}_`))
    },
    { timeoutMs: 20_000 },
  )
}

async function isLeader(replica: ControllerProcess): Promise<boolean> {
  return (await replica.metric('kube_locks_controller_leader')) === 1
}

async function expireOneLock(namespace: string, name: string): Promise<void> {
  await store.create(managedLease(namespace, name, { duration: 1 }))
  await waitFor(
    `${name} to be freed`,
    async () => {
      const lease = await store.get(namespace, name)
      return lease !== undefined && lease.holderIdentity === undefined ? true : undefined
    },
    { timeoutMs: 20_000 },
  )
}

describe('controller high availability', () => {
  it('exactly one of two replicas acts; on SIGTERM the leader releases, exits 0 and the other takes over at once', async () => {
    const ns = await createNamespace('ctl-ha-term')
    const replicas = [replica('ha-a', ns), replica('ha-b', ns)]
    const leader = await leaderOf(ns, replicas)
    const standby = replicas.find((r) => r !== leader) as ControllerProcess
    await standby.waitForLog('listed leases')
    await waitFor('the leader to report leadership', () => isLeader(leader) || undefined)
    expect(await isLeader(standby)).toBe(false)
    expect(await standby.get('/readyz')).toMatchObject({ status: 200 })

    await expireOneLock(ns, 'first')
    expect(await leader.metric('kube_locks_reclaimed_total')).toBe(1)
    expect(await standby.metric('kube_locks_reclaimed_total')).toBe(0)

    const exit = await leader.stop('SIGTERM')
    expect(exit, leader.output()).toMatchObject({ code: 0, signal: null })
    expect(exit.ms).toBeLessThan(10_000)
    expect(leader.logged('released leadership')).toHaveLength(1)
    const stoppedAt = performance.now()
    // Released, not expired: the standby's watch sees the free lease and takes it in about a round trip.
    await waitFor(
      'the standby to become the leader',
      async () => {
        const lease = await store.get(ns, ELECTION)
        return lease?.holderIdentity?.startsWith(`${standby.name}_`) || undefined
      },
      { timeoutMs: 10_000, intervalMs: 20 },
    )
    expect(performance.now() - stoppedAt).toBeLessThan(2_000)
    await waitFor('the new leader to report leadership', () => isLeader(standby) || undefined)

    await expireOneLock(ns, 'second')
    expect(await standby.metric('kube_locks_reclaimed_total')).toBe(1)

    // A standby waiting for leadership also stops at once on SIGTERM, and the leader is unaffected.
    const late = replica('ha-c', ns)
    await late.waitForLog('listed leases')
    await late.waitForLog('waiting for leadership')
    const lateExit = await late.stop('SIGTERM')
    expect(lateExit, late.output()).toMatchObject({ code: 0, signal: null })
    expect(lateExit.ms).toBeLessThan(5_000)
    expect(late.logged('became the leader')).toEqual([])
    expect(await isLeader(standby)).toBe(true)
  })

  it('when the leader is killed (SIGKILL), the standby takes over once the leader lock expires', async () => {
    const ns = await createNamespace('ctl-ha-kill')
    const replicas = [replica('kill-a', ns), replica('kill-b', ns)]
    const leader = await leaderOf(ns, replicas)
    const standby = replicas.find((r) => r !== leader) as ControllerProcess
    await standby.waitForLog('listed leases')
    await waitFor('the leader to report leadership', () => isLeader(leader) || undefined)

    const exit = await leader.stop('SIGKILL')
    expect(exit.signal).toBe('SIGKILL')
    const killedAt = performance.now()
    await store.create(managedLease(ns, 'orphan', { duration: 1 }))
    await waitFor(
      'the standby to become the leader',
      async () => {
        const lease = await store.get(ns, ELECTION)
        return lease?.holderIdentity?.startsWith(`${standby.name}_`) || undefined
      },
      { timeoutMs: 20_000, intervalMs: 50 },
    )
    const tookOver = performance.now() - killedAt
    // Nobody released the lock: the standby must see it unchanged for its 4 s expiry (plus grace).
    expect(tookOver).toBeGreaterThanOrEqual(3_000)
    expect(tookOver).toBeLessThan(12_000)
    await waitFor(
      'the orphaned lock to be freed by the new leader',
      async () => {
        const lease = await store.get(ns, 'orphan')
        return lease !== undefined && lease.holderIdentity === undefined ? true : undefined
      },
      { timeoutMs: 15_000 },
    )
    expect(await standby.metric('kube_locks_reclaimed_total')).toBeGreaterThanOrEqual(1)
  })

  it('stops acting the moment its leadership is taken, and acts again once it wins it back', async () => {
    const ns = await createNamespace('ctl-ha-lose')
    const only = replica('lose', ns)
    await leaderOf(ns, [only])
    await waitFor('leadership', () => isLeader(only) || undefined)
    const election = await store.get(ns, ELECTION)
    if (election === undefined) throw new Error('the election lease is missing')
    // Someone else writes the election lease: the replica's next renewal fails and its signal aborts.
    await store.update({ ...election, holderIdentity: 'intruder_1_x', leaseDurationSeconds: 6 })
    const takenAt = performance.now()
    await only.waitForLog('lost leadership; stopped acting')
    expect(await only.metric('kube_locks_controller_leader')).toBe(0)
    await store.create(managedLease(ns, 'while-lost', { duration: 1 }))
    const freedAt = await waitFor(
      'the lock to be freed once leadership is back',
      async () => {
        const lease = await store.get(ns, 'while-lost')
        return lease !== undefined && lease.holderIdentity === undefined ? performance.now() : undefined
      },
      { timeoutMs: 25_000, intervalMs: 50 },
    )
    // The intruder never renews: the replica wins again only after seeing it unchanged for 6 s (+ grace).
    expect(freedAt - takenAt).toBeGreaterThanOrEqual(6_000)
    expect(only.logged('became the leader')).toHaveLength(2)
    expect(await only.metric('kube_locks_reclaimed_total')).toBe(1)
  })
})
