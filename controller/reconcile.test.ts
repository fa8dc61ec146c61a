import { describe, expect, it } from 'vitest'
import {
  freedRecord,
  type LeaseRecord,
  LOCK_NAME_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  NODE_ANNOTATION,
  POD_ANNOTATION,
  SERVICE_ANNOTATION,
  ticketDraft,
} from '../sdk/internal.ts'
import { type Decision, observe, reconcile } from './reconcile.ts'

const settings = { graceMs: 2_000, retentionMs: 300_000 }
const WALL = Date.UTC(2030, 0, 2, 3, 4, 5, 678) + 0.25

function lease(overrides: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    namespace: 'shop',
    name: 'orders',
    uid: 'uid-1',
    resourceVersion: '9007199254740993',
    holderIdentity: 'pod-a_12_abcd',
    leaseDurationSeconds: 20,
    acquireTime: '2030-01-02T03:04:00.000000Z',
    renewTime: '2030-01-02T03:04:00.000000Z',
    leaseTransitions: 3,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
    annotations: {
      [LOCK_NAME_ANNOTATION]: 'orders',
      [SERVICE_ANNOTATION]: 'update-customer',
      [POD_ANNOTATION]: 'pod-a',
      [NODE_ANNOTATION]: 'node-1',
    },
    creationTimestamp: '2030-01-02T03:00:00Z',
    ...overrides,
  }
}

const free = (overrides: Partial<LeaseRecord> = {}) =>
  lease({ holderIdentity: undefined, annotations: { [LOCK_NAME_ANNOTATION]: 'orders' }, ...overrides })

/** A waiter's ticket in the queue of lock `orders`, as the SDK creates it. */
function ticket(overrides: Partial<LeaseRecord> = {}): LeaseRecord {
  const draft = ticketDraft({
    namespace: 'shop',
    leaseName: 'orders',
    lockName: 'orders',
    identity: 'pod-b_7_efgh',
    durationSeconds: 15,
    annotations: { [SERVICE_ANNOTATION]: 'update-customer', [POD_ANNOTATION]: 'pod-b' },
    wallNow: WALL,
    name: 'orders.q-abcdefghijklmnop',
  })
  return {
    ...draft,
    uid: 'uid-t',
    resourceVersion: '9007199254740995',
    creationTimestamp: '2030-01-02T03:04:05Z',
    ...overrides,
  }
}

type Case = {
  readonly name: string
  readonly record: LeaseRecord
  /** Milliseconds this process has seen the record unchanged. */
  readonly unchangedMs: number
  readonly settings?: { graceMs: number; retentionMs: number }
  readonly expected: Partial<Decision> & { kind: Decision['kind'] }
}

const FIRST_SEEN = 1_000_000

const cases: Case[] = [
  {
    name: 'held, just seen',
    record: lease(),
    unchangedMs: 0,
    expected: { kind: 'wait', state: 'held', requeueAfterMs: 22_000 },
  },
  {
    name: 'held, duration passed but not the grace',
    record: lease(),
    unchangedMs: 21_999,
    expected: { kind: 'wait', state: 'held', requeueAfterMs: 1 },
  },
  {
    name: 'held, duration plus grace passed',
    record: lease(),
    unchangedMs: 22_000,
    expected: { kind: 'free', unchangedMs: 22_000 },
  },
  {
    name: 'held, grace 0 frees at the duration exactly',
    record: lease({ leaseDurationSeconds: 1 }),
    unchangedMs: 1_000,
    settings: { graceMs: 0, retentionMs: 300_000 },
    expected: { kind: 'free' },
  },
  {
    name: 'held without a duration never expires',
    record: lease({ leaseDurationSeconds: undefined }),
    unchangedMs: 10 ** 9,
    expected: { kind: 'ignore' },
  },
  {
    name: 'held with a zero duration never expires',
    record: lease({ leaseDurationSeconds: 0 }),
    unchangedMs: 10 ** 9,
    expected: { kind: 'ignore' },
  },
  {
    name: 'empty holder counts as free',
    record: free({ holderIdentity: '' }),
    unchangedMs: 0,
    expected: { kind: 'wait', state: 'free', requeueAfterMs: 300_000 },
  },
  {
    name: 'free, retention not over',
    record: free(),
    unchangedMs: 299_999,
    expected: { kind: 'wait', state: 'free', requeueAfterMs: 1 },
  },
  {
    name: 'free for the retention period',
    record: free(),
    unchangedMs: 300_000,
    expected: {
      kind: 'delete',
      preconditions: { uid: 'uid-1', resourceVersion: '9007199254740993' },
      freeMs: 300_000,
    },
  },
  {
    name: 'free, retention 0 deletes at once',
    record: free(),
    unchangedMs: 0,
    settings: { graceMs: 2_000, retentionMs: 0 },
    expected: { kind: 'delete' },
  },
  {
    name: 'unmanaged and long expired (a leader-election lease): never freed',
    record: lease({ labels: {} }),
    unchangedMs: 10 ** 9,
    expected: { kind: 'ignore' },
  },
  {
    name: 'unmanaged and long free (a node heartbeat): never deleted',
    record: free({ labels: { 'kubernetes.io/hostname': 'node-1' } }),
    unchangedMs: 10 ** 9,
    expected: { kind: 'ignore' },
  },
  {
    name: 'ticket, just seen: waits for its duration plus grace',
    record: ticket(),
    unchangedMs: 0,
    expected: { kind: 'wait', state: 'waiting', requeueAfterMs: 17_000 },
  },
  {
    name: 'ticket, duration passed but not the grace',
    record: ticket(),
    unchangedMs: 16_999,
    expected: { kind: 'wait', state: 'waiting', requeueAfterMs: 1 },
  },
  {
    name: 'ticket unrenewed for its duration plus grace: deleted, never freed',
    record: ticket(),
    unchangedMs: 17_000,
    expected: {
      kind: 'delete-ticket',
      why: 'expired',
      preconditions: { uid: 'uid-t', resourceVersion: '9007199254740995' },
      unchangedMs: 17_000,
    },
  },
  {
    name: 'ticket without a waiter: deleted at once, not kept for the retention',
    record: ticket({ holderIdentity: undefined }),
    unchangedMs: 0,
    expected: {
      kind: 'delete-ticket',
      why: 'free',
      preconditions: { uid: 'uid-t', resourceVersion: '9007199254740995' },
    },
  },
  {
    name: 'ticket with an empty holder counts as free',
    record: ticket({ holderIdentity: '' }),
    unchangedMs: 0,
    expected: { kind: 'delete-ticket', why: 'free' },
  },
  {
    name: 'ticket without a duration never expires by observation',
    record: ticket({ leaseDurationSeconds: undefined }),
    unchangedMs: 10 ** 9,
    expected: { kind: 'ignore' },
  },
  {
    name: 'ticket, grace 0 deletes at the duration exactly',
    record: ticket(),
    unchangedMs: 15_000,
    settings: { graceMs: 0, retentionMs: 300_000 },
    expected: { kind: 'delete-ticket', why: 'expired' },
  },
  {
    name: 'unmanaged lease with the queue label: never deleted',
    record: ticket({ labels: { 'kube-locks.io/queue-for': 'orders' } }),
    unchangedMs: 10 ** 9,
    expected: { kind: 'ignore' },
  },
  {
    name: 'managed-by another tool',
    record: lease({ labels: { [MANAGED_BY_LABEL]: 'Helm' } }),
    unchangedMs: 10 ** 9,
    expected: { kind: 'ignore' },
  },
]

describe('reconcile', () => {
  it.each(cases)('$name', ({ record, unchangedMs, expected, ...rest }) => {
    const decision = reconcile(
      { record, firstSeenAt: FIRST_SEEN },
      FIRST_SEEN + unchangedMs,
      WALL,
      rest.settings ?? settings,
    )
    expect(decision).toMatchObject(expected)
  })

  it('frees like a release: no holder or holder annotations, same uid and resourceVersion as preconditions', () => {
    const record = lease()
    const decision = reconcile({ record, firstSeenAt: 0 }, 22_000, WALL, settings)
    expect(decision.kind).toBe('free')
    const update = (decision as Extract<Decision, { kind: 'free' }>).update
    expect(update).toEqual({
      ...record,
      holderIdentity: undefined,
      acquireTime: undefined,
      renewTime: '2030-01-02T03:04:05.678250Z',
      annotations: { [LOCK_NAME_ANNOTATION]: 'orders' },
    })
    expect(record.holderIdentity).toBe('pod-a_12_abcd')
  })

  it('keeps foreign annotations and labels when freeing', () => {
    const record = lease({ annotations: { ...lease().annotations, 'example.com/owner': 'team-a' } })
    expect(freedRecord(record, WALL).annotations).toEqual({
      [LOCK_NAME_ANNOTATION]: 'orders',
      'example.com/owner': 'team-a',
    })
    expect(freedRecord(record, WALL).labels).toEqual(record.labels)
  })
})

describe('reconcile of tickets', () => {
  it('never asks to free a ticket, whatever it looks like', () => {
    for (const record of [
      ticket(),
      ticket({ holderIdentity: undefined }),
      ticket({ leaseDurationSeconds: 1 }),
    ]) {
      for (const unchangedMs of [0, 1_000, 17_000, 10 ** 9]) {
        const decision = reconcile({ record, firstSeenAt: 0 }, unchangedMs, WALL, settings)
        expect(decision.kind, `${record.holderIdentity} after ${unchangedMs} ms`).not.toBe('free')
        expect(decision.kind).not.toBe('delete')
      }
    }
  })

  it('a renewal just before expiry keeps the ticket for a whole duration plus grace more', () => {
    let observation = observe(undefined, ticket(), 0)
    expect(reconcile(observation, 16_999, WALL, settings).kind).toBe('wait')
    observation = observe(
      observation,
      ticket({ resourceVersion: '9007199254740997', renewTime: '2030-01-02T03:04:21.000000Z' }),
      16_999,
    )
    expect(reconcile(observation, 17_000, WALL, settings)).toMatchObject({
      kind: 'wait',
      state: 'waiting',
      requeueAfterMs: 16_999,
    })
    expect(reconcile(observation, 33_999, WALL, settings)).toMatchObject({
      kind: 'delete-ticket',
      preconditions: { uid: 'uid-t', resourceVersion: '9007199254740997' },
    })
  })
})

describe('observe', () => {
  it('keeps the first-seen time while uid and resourceVersion stay the same', () => {
    const first = observe(undefined, lease(), 10)
    const again = observe(first, { ...lease() }, 5_000)
    expect(again.firstSeenAt).toBe(10)
  })

  it('restarts the clock when the lease was written (renewed)', () => {
    const first = observe(undefined, lease(), 10)
    expect(observe(first, lease({ resourceVersion: '9007199254740994' }), 5_000).firstSeenAt).toBe(5_000)
  })

  it('restarts the clock when the lease was deleted and created again', () => {
    const first = observe(undefined, lease(), 10)
    expect(observe(first, lease({ uid: 'uid-2' }), 5_000).firstSeenAt).toBe(5_000)
  })

  it('a renewal just before expiry postpones freeing by a whole duration plus grace', () => {
    let observation = observe(undefined, lease(), 0)
    expect(reconcile(observation, 21_999, WALL, settings).kind).toBe('wait')
    observation = observe(observation, lease({ resourceVersion: '9007199254740994' }), 21_999)
    expect(reconcile(observation, 22_000, WALL, settings)).toMatchObject({
      kind: 'wait',
      requeueAfterMs: 21_999,
    })
    expect(reconcile(observation, 43_999, WALL, settings).kind).toBe('free')
  })
})
