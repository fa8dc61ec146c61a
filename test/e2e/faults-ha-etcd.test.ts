import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { HaControlPlane } from '../../dev/cluster/index.ts'
import { recordSummary, scaled, type Worker } from '../faults/coordinator.ts'
import { committedAgain, endlessContention, type HaRun, haRun, ROUND_TRIP_MS } from './ha-faults.ts'

// Faults of single etcd members under two API servers (HaControlPlane): a SIGKILL of the leader, of a
// follower, and a member cut off from its peers (a real network cut of its raft traffic, both ways)
// and healed. Contenders on both API servers keep taking one lock throughout; a renewing holder keeps
// another, waited on through the other server. The checker judges every hold and write.

let plane: HaControlPlane | undefined
let run: HaRun | undefined

beforeAll(async () => {
  plane = await HaControlPlane.start()
}, 180_000)

afterEach(async () => {
  await run?.close()
  run = undefined
  // A test that failed half-way leaves the next one a whole cluster.
  for (const member of plane?.etcd ?? []) {
    plane?.healEtcdMember(member.index)
    if (!member.process.running) await plane?.startEtcdMember(member.index)
  }
})

afterAll(async () => {
  await plane?.stop()
})

/** Writes that must commit while each fault lasts, and again after it was repaired. */
const UNDER_FAULT = scaled(1, 10)

type Fault = 'kill-leader' | 'kill-follower' | 'cut-off'

/** Which member the fault hits: the leader, or the first member that is not. */
async function victimOf(cp: HaControlPlane, fault: Fault, round: number): Promise<number> {
  const leader = await cp.etcdLeader()
  if (fault === 'kill-leader') return leader
  // The cut alternates between the leader (it must step down) and a follower (it must not disrupt).
  if (fault === 'cut-off' && round % 2 === 0) return leader
  return cp.etcd.find((m) => m.index !== leader)?.index ?? 0
}

/** Injects the fault, waits for contention to commit while it lasts, then repairs it. */
async function inject(cp: HaControlPlane, fault: Fault, victim: number, contenders: readonly Worker[]) {
  if (fault === 'cut-off') {
    cp.isolateEtcdMember(victim)
    // Cut off, the member hears from no leader (a leader steps down: it cannot reach a quorum).
    const deadline = performance.now() + 30_000
    while ((await cp.etcdStatus(victim)).leaderId !== '0') {
      if (performance.now() > deadline)
        throw new Error(`etcd member ${victim} still had a leader 30 s after the cut`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } else await cp.etcd[victim]?.process.kill()
  // A majority is left: a leader among them, and writes commit.
  const leader = await cp.etcdLeader(30_000)
  if (fault === 'kill-leader' || fault === 'cut-off') expect(leader).not.toBe(victim)
  await committedAgain(contenders, 60_000, UNDER_FAULT)
  if (fault === 'cut-off') cp.healEtcdMember(victim)
  else await cp.startEtcdMember(victim)
  // Repaired, the member follows the leader again.
  const deadline = performance.now() + 30_000
  for (;;) {
    const [mine, theirs] = await Promise.all([cp.etcdStatus(victim), cp.etcdStatus(await cp.etcdLeader())])
    if (mine.leaderId !== '0' && mine.leaderId === theirs.leaderId) break
    if (performance.now() > deadline) throw new Error(`etcd member ${victim} did not rejoin within 30 s`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await committedAgain(contenders, 60_000, UNDER_FAULT)
}

async function faultRun(fault: Fault): Promise<void> {
  if (!plane) throw new Error('no control plane')
  const cp = plane
  const ha = await haRun(cp, `faults-ha-${fault}`)
  run = ha
  ha.r.resources(['held'])
  const [holder, waiter] = await Promise.all([ha.spawn('holder-api0', 0), ha.spawn('waiter-api1', 1)])
  holder.send({ type: 'acquire', lock: 'held', options: { expires: 10, timeout: 30, renew: true } })
  await holder.next('acquired')
  waiter.send({ type: 'acquire', lock: 'held', options: { expires: 10, timeout: 600 } })
  await waiter.next('acquiring')
  const plan = endlessContention(['busy'], 5)
  const contenders = await Promise.all(
    Array.from({ length: 4 }, (_, i) => ha.spawn(`c${i}-api${i % 2}`, i % 2, { contend: plan })),
  )
  await committedAgain(contenders, 60_000)
  const victims: number[] = []
  for (let round = 0; round < scaled(1, 4); round++) {
    const victim = await victimOf(cp, fault, round)
    victims.push(victim)
    await inject(cp, fault, victim, contenders)
    ha.r.fault()
  }
  // The held lock survived, or was lost with its signal fired (the checker judges which); either way
  // the waiter on the other server holds it after the release, within a round trip if it survived.
  const lost = holder.received.some((m) => m.report.type === 'aborted')
  holder.send({ type: 'release', lock: 'held' })
  const released = await holder.next('released', () => true, 30_000)
  const acquired = await waiter.next('acquired', () => true, 60_000)
  if (!lost) expect(acquired.at - released.at).toBeLessThanOrEqual(ROUND_TRIP_MS)
  recordSummary({ test: `ha: etcd ${fault}`, victims, holderLost: lost })
  await Promise.all(contenders.map((c) => c.stop(120_000)))
  await Promise.all([holder.stop(), waiter.stop()])
  const result = ha.r.assertSafe(`ha: etcd ${fault}`)
  expect(result.committed).toBeGreaterThan(2)
}

describe('faults: one etcd member of three', () => {
  const timeout = scaled(150_000, 600_000)
  it('SIGKILL of the leader, then its restart, under contention', () => faultRun('kill-leader'), timeout)
  it('SIGKILL of a follower, then its restart, under contention', () => faultRun('kill-follower'), timeout)
  it('a member cut off from its peers, then healed, under contention', () => faultRun('cut-off'), timeout)
})
