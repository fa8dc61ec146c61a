import { describe, expect, it } from 'vitest'
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from './constants.ts'
import { observe } from './expiry.ts'
import type { LeaseRecord } from './lease-record.ts'
import { DEFAULTS } from './options.ts'
import { RECLAIM_DEFAULTS, reclaimDecision, reclaimManagedDecision } from './reclaim.ts'

const settings = { graceMs: RECLAIM_DEFAULTS.grace * 1000, retentionMs: RECLAIM_DEFAULTS.retention * 1000 }
const WALL = Date.UTC(2030, 0, 1)

function lease(overrides: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    namespace: 'ns',
    name: 'orders',
    uid: 'uid-1',
    resourceVersion: '7',
    holderIdentity: 'pod-a_1_x',
    leaseDurationSeconds: 20,
    acquireTime: undefined,
    renewTime: undefined,
    leaseTransitions: 0,
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
    annotations: {},
    creationTimestamp: undefined,
    ...overrides,
  }
}

describe('RECLAIM_DEFAULTS', () => {
  it('gives the controller a longer grace than a waiting client, so a watching waiter comes first', () => {
    expect(RECLAIM_DEFAULTS).toEqual({ grace: 2, retention: 300 })
    expect(Object.isFrozen(RECLAIM_DEFAULTS)).toBe(true)
    expect(RECLAIM_DEFAULTS.grace).toBeGreaterThan(DEFAULTS.expiryGrace)
  })
})

describe('reclaimDecision', () => {
  it.each([
    ['held, within duration + grace', lease(), 21_999, { kind: 'wait', state: 'held', requeueAfterMs: 1 }],
    ['held, at duration + grace', lease(), 22_000, { kind: 'free', unchangedMs: 22_000 }],
    ['held without a duration', lease({ leaseDurationSeconds: undefined }), 1e9, { kind: 'ignore' }],
    [
      'free, within the retention',
      lease({ holderIdentity: undefined }),
      299_000,
      { kind: 'wait', state: 'free', requeueAfterMs: 1000 },
    ],
    [
      'free, at the retention',
      lease({ holderIdentity: undefined }),
      300_000,
      { kind: 'delete', freeMs: 300_000 },
    ],
  ] as const)('%s', (_, record, now, expected) => {
    const decision = reclaimDecision(observe(undefined, record, 0), now, WALL, settings)
    expect(decision).toMatchObject(expected)
  })

  it('frees by clearing the holder, under the observed uid and resourceVersion', () => {
    const decision = reclaimDecision(observe(undefined, lease(), 0), 22_000, WALL, settings)
    if (decision.kind !== 'free') throw new Error(`expected free, got ${decision.kind}`)
    expect(decision.update).toMatchObject({ uid: 'uid-1', resourceVersion: '7', holderIdentity: undefined })
  })

  it('leaves a lease without the managed-by label alone; the managed form trusts the caller', () => {
    const foreign = observe(undefined, lease({ labels: {} }), 0)
    expect(reclaimDecision(foreign, 1e9, WALL, settings)).toEqual({
      kind: 'ignore',
      why: 'not managed by kube-locks',
    })
    expect(reclaimManagedDecision(foreign, 1e9, WALL, settings).kind).toBe('free')
  })
})
