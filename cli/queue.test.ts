import { describe, expect, it } from 'vitest'
import { recordToLease, ticketDraft } from '../sdk/internal.ts'
import type { LeaseJson } from './api.ts'
import { Queues, splitTickets } from './queue.ts'
import { itemOf } from './session.ts'

let revision = 100

function lock(name: string, namespace = 'shop') {
  return itemOf({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name,
      namespace,
      uid: `uid-${namespace}-${name}`,
      resourceVersion: String(++revision),
      labels: { 'app.kubernetes.io/managed-by': 'kube-locks' },
      annotations: { 'kube-locks.io/name': name },
    },
    spec: { holderIdentity: 'holder_1_x', leaseDurationSeconds: 20 },
  })
}

function ticket(
  lockLease: string,
  suffix: string,
  options: {
    namespace?: string
    resourceVersion?: string
    position?: string
    holder?: string | undefined
  } = {},
) {
  const draft = ticketDraft({
    namespace: options.namespace ?? 'shop',
    leaseName: lockLease,
    lockName: lockLease,
    identity: 'holder' in options ? (options.holder as string) : `waiter-${suffix}_1_x`,
    durationSeconds: 15,
    annotations: {},
    wallNow: Date.UTC(2030, 0, 1),
    name: `${lockLease}.q-${suffix}`,
  })
  const json = recordToLease({
    ...draft,
    uid: `uid-${suffix}`,
    resourceVersion: options.resourceVersion ?? String(++revision),
    creationTimestamp: '2030-01-01T00:00:00Z',
    annotations:
      options.position === undefined
        ? draft.annotations
        : { ...draft.annotations, 'kube-locks.io/position': options.position },
  }) as LeaseJson
  return itemOf(json)
}

const names = (items: readonly { view: { name: string } }[]) => items.map((item) => item.view.name)

describe('splitTickets', () => {
  it('sets tickets apart from locks', () => {
    const items = [lock('a'), ticket('a', 'one'), lock('b'), ticket('b', 'two')]
    const { locks, tickets } = splitTickets(items)
    expect(names(locks)).toEqual(['a', 'b'])
    expect(names(tickets)).toEqual(['a.q-one', 'b.q-two'])
  })
})

describe('Queues', () => {
  it('lists the waiters of a lock in line order: by the position every renewal writes, else by creation', () => {
    const orders = lock('orders')
    // Created third, but renewed since: its position is written down.
    const first = ticket('orders', 'zzz', { resourceVersion: '900', position: '10' })
    const second = ticket('orders', 'aaa', { resourceVersion: '20' })
    const third = ticket('orders', 'mmm', { resourceVersion: '9007199254740993' })
    const queues = new Queues([third, second, first])
    expect(names(queues.of(orders))).toEqual(['orders.q-zzz', 'orders.q-aaa', 'orders.q-mmm'])
    expect(queues.count(orders)).toBe(3)
  })

  it('counts only tickets that name a waiter, of this lock, in its namespace', () => {
    const orders = lock('orders')
    const queues = new Queues([
      ticket('orders', 'one'),
      ticket('orders', 'free', { holder: undefined }),
      ticket('orders', 'elsewhere', { namespace: 'other' }),
      ticket('orders-eu', 'two'),
    ])
    expect(queues.count(orders)).toBe(1)
    expect(queues.count(lock('orders', 'other'))).toBe(1)
    expect(queues.count(lock('orders-eu'))).toBe(1)
    expect(queues.count(lock('nightly'))).toBe(0)
  })

  it('follows tickets that come, change and go, and says which lock they wait for', () => {
    const orders = lock('orders')
    const queues = new Queues()
    const one = ticket('orders', 'one')
    expect(queues.set(one)).toBe('shop/orders')
    expect(queues.set(ticket('orders', 'one'))).toBe('shop/orders')
    expect(queues.count(orders)).toBe(1)
    expect(queues.delete(one)).toBe('shop/orders')
    expect(queues.count(orders)).toBe(0)
    expect(queues.keyOf(orders)).toBe('shop/orders')
  })
})
