import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { LockApiError } from '../sdk/internal.ts'
import { type EventObject, EventRecorder, type EventSink, type LockEvent } from './events.ts'
import { createMetrics } from './metrics.ts'

type Call = { readonly verb: 'create' | 'update'; readonly event: EventObject }

let calls: Call[]
let failUpdate: number | undefined
let metrics: ReturnType<typeof createMetrics>

const sink: EventSink = {
  async create(event) {
    calls.push({ verb: 'create', event })
    return { ...event, metadata: { ...event.metadata, resourceVersion: String(calls.length) } }
  },
  async update(event) {
    calls.push({ verb: 'update', event })
    if (failUpdate !== undefined) throw new LockApiError(failUpdate, undefined, 'gone')
    return event
  },
}

function expired(name = 'orders', uid = 'uid-1'): LockEvent {
  return {
    reason: 'LockExpired',
    type: 'Warning',
    action: 'Reclaim',
    note: `lock ${name} expired`,
    lease: { namespace: 'shop', name, uid },
  }
}

function recorder(options: { burst?: number; qps?: number } = {}): EventRecorder {
  return new EventRecorder({
    sink,
    metrics,
    logger: {},
    now: () => Date.now(),
    reportingInstance: 'pod-1',
    ...options,
  })
}

const dropped = async () =>
  (await metrics.eventsDropped.get()).values.reduce((sum, value) => sum + value.value, 0)

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) })
  calls = []
  failUpdate = undefined
  metrics = createMetrics({ processMetrics: false })
})

afterEach(() => {
  expect(vi.getTimerCount()).toBe(0)
  vi.useRealTimers()
})

describe('EventRecorder', () => {
  it('creates one Event on the Lease, then folds repeats into its series at most every 10 s', async () => {
    const events = recorder()
    events.record(expired())
    await vi.advanceTimersByTimeAsync(0)
    expect(calls).toHaveLength(1)
    expect(calls[0]?.verb).toBe('create')
    expect(calls[0]?.event).toMatchObject({
      reason: 'LockExpired',
      type: 'Warning',
      action: 'Reclaim',
      reportingController: 'kube-locks.io/controller',
      reportingInstance: 'pod-1',
      regarding: {
        kind: 'Lease',
        apiVersion: 'coordination.k8s.io/v1',
        namespace: 'shop',
        name: 'orders',
        uid: 'uid-1',
      },
      metadata: { namespace: 'shop' },
    })
    expect(calls[0]?.event.metadata?.name).toMatch(/^orders\.[0-9a-f]{16}$/)
    expect(calls[0]?.event.series).toBeUndefined()
    for (let i = 0; i < 50; i++) events.record(expired())
    await vi.advanceTimersByTimeAsync(9_999)
    expect(calls).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(calls).toHaveLength(2)
    expect(calls[1]?.verb).toBe('update')
    expect(calls[1]?.event.metadata?.name).toBe(calls[0]?.event.metadata?.name)
    expect(calls[1]?.event.series?.count).toBe(51)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(calls).toHaveLength(2)
    await events.stop()
  })

  it('starts a new Event once the series window passed', async () => {
    const events = recorder()
    events.record(expired())
    await vi.advanceTimersByTimeAsync(10 * 60_000 + 1)
    events.record(expired())
    await vi.advanceTimersByTimeAsync(0)
    expect(calls.map((call) => call.verb)).toEqual(['create', 'create'])
    await events.stop()
  })

  it('keeps separate Events per lease and per reason', async () => {
    const events = recorder()
    events.record(expired('a'))
    events.record(expired('b'))
    events.record({ ...expired('a'), reason: 'LockReclaimed', type: 'Normal' })
    await vi.advanceTimersByTimeAsync(0)
    expect(calls.map((call) => `${call.verb} ${call.event.regarding?.name} ${call.event.reason}`)).toEqual([
      'create a LockExpired',
      'create b LockExpired',
      'create a LockReclaimed',
    ])
    await events.stop()
  })

  it('drops new Events beyond the shared budget and counts them', async () => {
    const events = recorder({ burst: 3, qps: 1 })
    for (let i = 0; i < 10; i++) events.record(expired(`lock-${i}`, `uid-${i}`))
    await vi.advanceTimersByTimeAsync(0)
    expect(calls).toHaveLength(3)
    expect(await dropped()).toBe(7)
    await vi.advanceTimersByTimeAsync(2_000)
    events.record(expired('lock-9', 'uid-9'))
    await vi.advanceTimersByTimeAsync(0)
    expect(calls).toHaveLength(4)
    await events.stop()
  })

  it('creates a new Event with the whole count when the old one is gone', async () => {
    const events = recorder()
    events.record(expired())
    await vi.advanceTimersByTimeAsync(0)
    failUpdate = 404
    events.record(expired())
    events.record(expired())
    await vi.advanceTimersByTimeAsync(10_000)
    expect(calls.map((call) => call.verb)).toEqual(['create', 'update', 'create'])
    expect(calls[2]?.event.series?.count).toBe(3)
    await events.stop()
  })

  it('stop() writes deferred counts at once, then records nothing more', async () => {
    const events = recorder()
    events.record(expired())
    await vi.advanceTimersByTimeAsync(0)
    events.record(expired())
    await events.stop()
    expect(calls.map((call) => call.verb)).toEqual(['create', 'update'])
    expect(calls[1]?.event.series?.count).toBe(2)
    events.record(expired())
    await vi.advanceTimersByTimeAsync(60_000)
    expect(calls).toHaveLength(2)
  })
})
