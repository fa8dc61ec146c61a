import { describe, expect, it } from 'vitest'
import { type LeaseRecord, ticketDraft } from '../sdk/internal.ts'
import { GC_DEFAULTS, gcPlan } from './gc-plan.ts'

const NOW = Date.parse('2030-01-01T12:00:00Z')

function lease(name: string, overrides: Partial<LeaseRecord>): LeaseRecord {
  return {
    namespace: 'ns',
    name,
    uid: `uid-${name}`,
    resourceVersion: '1',
    labels: {},
    holderIdentity: 'h',
    leaseDurationSeconds: 20,
    acquireTime: undefined,
    renewTime: undefined,
    leaseTransitions: 0,
    annotations: {},
    creationTimestamp: '2030-01-01T11:00:00Z',
    ...overrides,
  }
}

/** A waiter's ticket for lock `orders`, last renewed at `renewTime`. */
function ticket(name: string, renewTime: string, overrides: Partial<LeaseRecord> = {}): LeaseRecord {
  const draft = ticketDraft({
    namespace: 'ns',
    leaseName: 'orders',
    lockName: 'orders',
    identity: `waiter-${name}_1_x`,
    durationSeconds: 15,
    annotations: {},
    wallNow: Date.parse(renewTime),
    name: `orders.q-${name}`,
  })
  return {
    ...draft,
    uid: `uid-${name}`,
    resourceVersion: '2',
    creationTimestamp: '2030-01-01T11:00:00Z',
    ...overrides,
  }
}

describe('gcPlan', () => {
  it('frees held leases past duration plus grace and deletes leases free past the retention', () => {
    const leases = [
      // held, renewed 10 s ago: valid
      lease('valid', { renewTime: '2030-01-01T11:59:50Z' }),
      // held, 21 s since renewal: past the duration but within the grace
      lease('in-grace', { renewTime: '2030-01-01T11:59:39Z' }),
      // held, 23 s since renewal: past duration + grace
      lease('expired', { renewTime: '2030-01-01T11:59:37Z' }),
      // held without a duration: never judged expired
      lease('no-duration', { renewTime: '2030-01-01T10:00:00Z', leaseDurationSeconds: undefined }),
      // free since 4 minutes: kept
      lease('recently-free', { holderIdentity: undefined, renewTime: '2030-01-01T11:56:00Z' }),
      // free since 6 minutes: deleted
      lease('long-free', { holderIdentity: undefined, renewTime: '2030-01-01T11:54:00Z' }),
      // free, never written with a time: counted from creation (1 h)
      lease('never-held', { holderIdentity: '' }),
    ]
    const plan = gcPlan(leases, NOW, GC_DEFAULTS)
    expect(plan.map((step) => [step.lease.name, step.action, step.reason])).toEqual([
      ['expired', 'free', 'expired 3s ago (duration 20s + grace 2s)'],
      ['long-free', 'delete', 'free for 6m (retention 5m)'],
      ['never-held', 'delete', 'free for 60m (retention 5m)'],
    ])
  })

  it('follows the configured grace and retention', () => {
    const leases = [
      lease('held', { renewTime: '2030-01-01T11:59:30Z' }),
      lease('free', { holderIdentity: undefined, renewTime: '2030-01-01T11:59:00Z' }),
    ]
    expect(gcPlan(leases, NOW, { grace: 15, retention: 30 }).map((step) => step.lease.name)).toEqual(['free'])
    expect(gcPlan(leases, NOW, { grace: 5, retention: 120 }).map((step) => step.lease.name)).toEqual(['held'])
  })

  it('deletes tickets the controller would delete, and never frees one', () => {
    const leases = [
      // renewed 5 s ago: its waiter is alive
      ticket('live', '2030-01-01T11:59:55Z'),
      // 16 s since renewal: past the duration, within the grace
      ticket('in-grace', '2030-01-01T11:59:44Z'),
      // 20 s since renewal: past duration + grace
      ticket('gone', '2030-01-01T11:59:40Z'),
      // names no waiter: deleted at once, whatever the retention
      ticket('empty', '2030-01-01T11:59:59Z', { holderIdentity: undefined }),
    ]
    const plan = gcPlan(leases, NOW, GC_DEFAULTS)
    expect(plan.map((step) => [step.lease.name, step.kind, step.action, step.reason])).toEqual([
      [
        'orders.q-gone',
        'ticket',
        'delete',
        'ticket expired 5s ago (duration 15s + grace 2s): its waiter is gone',
      ],
      ['orders.q-empty', 'ticket', 'delete', 'ticket names no waiter'],
    ])
    expect(gcPlan([lease('expired', { renewTime: '2030-01-01T11:59:37Z' })], NOW, GC_DEFAULTS)[0]?.kind).toBe(
      'lock',
    )
  })
})
