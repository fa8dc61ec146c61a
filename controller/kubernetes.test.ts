import { describe, expect, it } from 'vitest'
import { type KubernetesLeaseStore, LockApiError, LockPermissionError } from '../sdk/internal.ts'
import { createEventSink } from './kubernetes.ts'

type EventCalls = Pick<KubernetesLeaseStore, 'createEvent' | 'patchEvent'>

describe('createEventSink', () => {
  it('creates the Event whole, and patches only its series', async () => {
    const calls: unknown[] = []
    const store: EventCalls = {
      createEvent: async (namespace, event) => {
        calls.push(['create', namespace, event])
        return event
      },
      patchEvent: async (namespace, name, patch) => {
        calls.push(['patch', namespace, name, patch])
        return patch
      },
    }
    const sink = createEventSink(store)
    const signal = new AbortController().signal
    const event = { metadata: { name: 'e', namespace: 'shop' }, note: 'n' }
    await sink.create(event, signal)
    await sink.update(
      { ...event, series: { count: 3, lastObservedTime: '2030-01-01T00:00:00.000000Z' } },
      signal,
    )
    await sink.update(event, signal)
    expect(calls).toEqual([
      ['create', 'shop', event],
      ['patch', 'shop', 'e', { series: { count: 3, lastObservedTime: '2030-01-01T00:00:00.000000Z' } }],
      ['patch', 'shop', 'e', { series: null }],
    ])
  })

  it('says which permission is missing when Events are refused', async () => {
    const refused = new LockPermissionError({
      verb: 'create',
      resource: 'events.events.k8s.io',
      namespace: 'shop',
      status: 403,
    })
    const store: EventCalls = {
      createEvent: async () => Promise.reject(refused),
      patchEvent: async () => Promise.reject(new LockApiError(404, 'NotFound', 'gone')),
    }
    const sink = createEventSink(store)
    const signal = new AbortController().signal
    const error = await sink.create({ metadata: { namespace: 'shop' } }, signal).catch((e: unknown) => e)
    expect(error).toMatchObject({
      status: 403,
      message:
        'the API server refused the Event: the controller needs `create` and `patch` on `events.events.k8s.io` in namespace `shop`',
    })
    await expect(sink.update({ metadata: { namespace: 'shop', name: 'e' } }, signal)).rejects.toMatchObject({
      status: 404,
    })
  })
})
