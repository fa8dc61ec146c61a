import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createLocks } from './create-locks.ts'
import { LockTimeoutError, LockUnavailableError } from './errors.ts'
import type { Lock } from './held-lock.ts'
import type { LeaseRecord } from './lease-record.ts'
import type { LeaseStore } from './lease-store.ts'
import type { Locks } from './locks.ts'
import type { MemoryLeaseStore } from './memory-store.ts'
import { createMemoryLeaseStore } from './memory-store.ts'
import type { LocksOptions } from './options.ts'
import { WaitLine } from './queue.ts'
import { fakeClock, settle, type Tracked, track } from './testing/helpers.ts'
import { compareTickets, isTicketOf, renewedTicket, ticketDraft } from './ticket.ts'
import { Wakeup } from './timers.ts'
import { WaitInbox } from './wait-io.ts'

const NS = 'shop'
let store: MemoryLeaseStore
/** Every lease in the store, kept from its changes (reading would add requests to count). */
const stored = new Map<string, LeaseRecord>()
const opened: Locks[] = []

function locks(identity: string, options: LocksOptions = {}): Locks {
  const instance = createLocks({ store, namespace: NS, identity, clock: fakeClock, ...options })
  opened.push(instance)
  return instance
}

/** The tickets of `lease` in the store, in line order. */
function line(lease: string) {
  return [...stored.values()].filter((item) => isTicketOf(item, lease)).sort(compareTickets)
}

/** The identity prefixes of `tickets`, in order. */
function names(tickets: readonly LeaseRecord[]): string {
  return tickets.map((ticket) => ticket.holderIdentity?.split('_')[0]).join()
}

/** A ticket nobody renews: a waiter that died. */
function deadTicket(lease: string, name: string) {
  return store.seed(
    ticketDraft({
      namespace: NS,
      leaseName: lease,
      lockName: lease,
      identity: `${name}_1_deadbeef`,
      durationSeconds: 15,
      annotations: {},
      wallNow: Date.now(),
      name: `${lease}.q-${name}`,
    }),
  )
}

/** Advances fake time in small steps until `done()` or `ms` passed. */
async function advanceUntil(done: () => boolean, ms: number): Promise<void> {
  for (let waited = 0; !done() && waited < ms; waited += 50) await vi.advanceTimersByTimeAsync(50)
}

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2030, 0, 1) })
  stored.clear()
  store = createMemoryLeaseStore({
    onChange: (event) => {
      if (event.type === 'BOOKMARK') return
      if (event.type === 'DELETED') stored.delete(event.lease.name)
      else stored.set(event.lease.name, event.lease)
    },
  })
})

afterEach(async () => {
  await Promise.all(opened.splice(0).map((instance) => instance.close()))
  expect(vi.getTimerCount()).toBe(0)
  expect(store.openWatches).toBe(0)
  vi.useRealTimers()
})

/** Starts waiters one after another, each once the previous one is in line. */
async function queue(lease: string, clients: readonly Locks[], timeouts: readonly number[]) {
  const waiters: Tracked<Lock>[] = []
  for (const [i, client] of clients.entries()) {
    waiters.push(track(client.acquire(lease, { timeout: timeouts[i] ?? 60 })))
    await advanceUntil(() => line(lease).length === waiters.length, 1000)
    expect(line(lease)).toHaveLength(waiters.length)
  }
  return waiters
}

describe('fair waiting', () => {
  it('serves waiters of several processes in the order they began waiting, whatever their timeouts', async () => {
    const holder = await locks('holder').acquire('orders')
    const clients = [1, 2, 3, 4, 5].map((n) => locks(`w${n}`))
    const waiters = await queue('orders', clients, [60, 5, 30, 10, 20])
    const order: string[] = []
    let current: Lock = holder
    for (let turn = 0; turn < waiters.length; turn++) {
      await current.release()
      await advanceUntil(
        () => waiters.some((w) => w.status === 'fulfilled' && !order.includes(w.value?.holder ?? '')),
        1000,
      )
      const next = waiters.find((w) => w.status === 'fulfilled' && !order.includes(w.value?.holder ?? ''))
      expect(next, `turn ${turn}`).toBeDefined()
      current = next?.value as Lock
      order.push(current.holder)
    }
    await current.release()
    expect(order.map((holder) => holder.split('_')[0])).toEqual(['w1', 'w2', 'w3', 'w4', 'w5'])
    expect(line('orders')).toEqual([])
  })

  it('serves waiters of one process in order too', async () => {
    const holder = await locks('holder').acquire('local')
    const client = locks('same')
    const first = track(client.acquire('local', { timeout: 30 }))
    await advanceUntil(() => line('local').length === 1, 1000)
    const second = track(client.acquire('local', { timeout: 30 }))
    await advanceUntil(() => line('local').length === 2, 1000)
    await holder.release()
    await advanceUntil(() => first.status !== 'pending', 1000)
    expect(first.status).toBe('fulfilled')
    expect(second.status).toBe('pending')
    await (first.value as Lock).release()
    await advanceUntil(() => second.status !== 'pending', 1000)
    expect(second.status).toBe('fulfilled')
    await (second.value as Lock).release()
  })

  it('wakes only the first in line on a release: one taking write, no reads, per handover', async () => {
    const holder = await locks('holder').acquire('calm')
    const waiters = await queue(
      'calm',
      Array.from({ length: 10 }, (_, n) => locks(`w${n}`)),
      [],
    )
    let current = holder
    for (let turn = 0; turn < waiters.length; turn++) {
      const before = store.calls.length
      await current.release()
      await advanceUntil(() => waiters.filter((w) => w.status === 'fulfilled').length > turn, 1000)
      const next = waiters[turn] as Tracked<Lock>
      expect(next.status, `turn ${turn}`).toBe('fulfilled')
      current = next.value as Lock
      await settle()
      const onLock = store.calls.slice(before).filter((call) => call.name === 'calm')
      // The release and the one taking update; nobody else read or wrote the lock.
      expect(
        onLock.map((call) => call.operation),
        `turn ${turn}`,
      ).toEqual(['update', 'update'])
    }
    await current.release()
  })

  it('never lets a new arrival take a free lock past a waiter in line', async () => {
    deadTicket('barge', 'someone')
    const client = locks('late')
    // The lock is free, but someone is in line: one attempt fails, and no ticket is left behind.
    await expect(client.acquire('barge', { timeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError)
    expect(line('barge')).toHaveLength(1)
    expect(store.peek(NS, 'barge')).toBeUndefined()
  })

  it('a waiter that died holds up the line for its ticket duration plus the grace, no longer', async () => {
    deadTicket('stuck', 'dead')
    const startedAt = Date.now()
    const waiter = track(locks('alive').acquire('stuck', { timeout: 60 }))
    await advanceUntil(() => waiter.status !== 'pending', 30_000)
    expect(waiter.status).toBe('fulfilled')
    const waited = (waiter.settledAt as number) - startedAt
    // 15 s unrenewed plus 1 s of grace, as this process observed it (plus one timer tick of slack).
    expect(waited).toBeGreaterThanOrEqual(16_000)
    expect(waited).toBeLessThanOrEqual(16_100)
    await (waiter.value as Lock).release()
  })

  it('a waiter that times out leaves the line at once and does not hold up those behind it', async () => {
    const holder = await locks('holder').acquire('middle')
    const [first, quitter, third] = await queue('middle', [locks('a'), locks('b'), locks('c')], [60, 2, 60])
    await advanceUntil(() => quitter?.status !== 'pending', 3000)
    expect(quitter?.error).toBeInstanceOf(LockTimeoutError)
    await advanceUntil(() => line('middle').length === 2, 1000)
    expect(line('middle').map((ticket) => ticket.holderIdentity?.split('_')[0])).toEqual(['a', 'c'])
    await holder.release()
    await advanceUntil(() => first?.status === 'fulfilled', 1000)
    const releasedAt = Date.now()
    await (first as Tracked<Lock>).value?.release()
    await advanceUntil(() => third?.status === 'fulfilled', 1000)
    expect(third?.settledAt).toBe(releasedAt)
    await (third as Tracked<Lock>).value?.release()
  })

  it('a waiter cut off past its place keeps no place: it joins again behind those who stayed', async () => {
    const holder = await locks('holder').acquire('cut')
    const [early] = await queue('cut', [locks('early')], [120])
    // From now on no update is answered: the early waiter's renewal (due at 7.5 s) hangs until its
    // request timeout (10 s), by when its place is no longer sure (15 s − 1.5 s after it joined).
    await vi.advanceTimersByTimeAsync(1000)
    const cut = store.pause('update')
    await vi.advanceTimersByTimeAsync(13_000)
    const later = track(locks('later').acquire('cut', { timeout: 120 }))
    await advanceUntil(() => line('cut').length === 2, 1000)
    await advanceUntil(() => names(line('cut')) === 'later,early', 5000)
    cut.resume()
    expect(names(line('cut'))).toBe('later,early')
    await holder.release()
    await advanceUntil(() => later.status === 'fulfilled', 1000)
    expect(early?.status).toBe('pending')
    await (later.value as Lock).release()
    await advanceUntil(() => early?.status === 'fulfilled', 1000)
    await (early as Tracked<Lock>).value?.release()
  })

  it('a renewal answered after the place was no longer sure does not keep it: the waiter joins again behind', async () => {
    const holder = await locks('holder').acquire('late')
    const [early] = await queue('late', [locks('early')], [120])
    await vi.advanceTimersByTimeAsync(3000)
    const [later] = await queue('late', [locks('later')], [120])
    const earlyTicket = line('late')[0]?.name
    // Renewals are held: the early waiter's (sent at 7.5 s) is answered at 14 s, past its place's
    // deadline (13.5 s), by when the others may have passed it; the later waiter's (sent at 10.5 s) is
    // answered within its own (16.5 s).
    await vi.advanceTimersByTimeAsync(4000)
    const held = store.pause('update')
    await vi.advanceTimersByTimeAsync(7000)
    held.resume()
    await advanceUntil(() => names(line('late')) === 'later,early', 3000)
    expect(names(line('late'))).toBe('later,early')
    expect(line('late')[1]?.name).not.toBe(earlyTicket)
    await holder.release()
    await advanceUntil(() => later?.status === 'fulfilled', 1000)
    expect(early?.status).toBe('pending')
    await (later as Tracked<Lock>).value?.release()
    await advanceUntil(() => early?.status === 'fulfilled', 1000)
    await (early as Tracked<Lock>).value?.release()
  })

  it('passes a waiter ahead as gone only on a fresh read of the line, never on a watch that lags', async () => {
    const holder = await locks('holder').acquire('lagging')
    let ahead = deadTicket('lagging', 'ahead')
    // This waiter's watch never delivers the changes of the ticket ahead of it.
    const lagging: LeaseStore = {
      ...store,
      watch: (namespace, options, onEvent) =>
        store.watch(namespace, options, (event) => {
          if (event.type !== 'BOOKMARK' && event.lease.name === ahead.name) return
          onEvent(event)
        }),
    }
    const behind = createLocks({ store: lagging, namespace: NS, identity: 'behind', clock: fakeClock })
    opened.push(behind)
    const waiter = track(behind.acquire('lagging', { timeout: 120 }))
    await advanceUntil(() => line('lagging').length === 2, 1000)
    await holder.release()
    // The waiter ahead stays alive, renewing every 7.5 s: the one behind must not pass it.
    for (let renewals = 0; renewals < 4; renewals++) {
      await vi.advanceTimersByTimeAsync(7500)
      ahead = await store.update(renewedTicket(ahead, Date.now()))
    }
    expect(waiter.status).toBe('pending')
    // Gone (the watch does not say so either): passed once seen unchanged for its duration + grace.
    await store.delete(NS, ahead.name, ahead)
    await advanceUntil(() => waiter.status !== 'pending', 20_000)
    expect(waiter.status).toBe('fulfilled')
    await (waiter.value as Lock).release()
  })

  it('decides it is first in line only on a view of the line at least as new as its own ticket', async () => {
    const holder = await locks('holder').acquire('unseen')
    // This waiter's watch delivers no ticket at all: its view of the line is its first read.
    const blind: LeaseStore = {
      ...store,
      watch: (namespace, options, onEvent) =>
        store.watch(namespace, options, (event) => {
          if (event.type !== 'BOOKMARK' && event.lease.name.includes('.q-')) return
          onEvent(event)
        }),
    }
    const second = createLocks({ store: blind, namespace: NS, identity: 'second', clock: fakeClock })
    opened.push(second)
    // Its create is held while another waiter joins first, after its read of the line.
    const creates = store.pause('create')
    const waiter = track(second.acquire('unseen', { timeout: 120 }))
    await advanceUntil(() => creates.waiting === 1, 1000)
    deadTicket('unseen', 'first')
    creates.resume()
    await advanceUntil(() => line('unseen').length === 2, 1000)
    expect(names(line('unseen'))).toBe('first,second')
    await holder.release()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(waiter.status).toBe('pending')
    // The first one never renews: passed once seen unchanged for its duration plus the grace.
    await advanceUntil(() => waiter.status !== 'pending', 10_000)
    expect(waiter.status).toBe('fulfilled')
    await (waiter.value as Lock).release()
  })

  it('fair: false races as before: no ticket', async () => {
    const holder = await locks('holder').acquire('race')
    const waiter = track(locks('racer').acquire('race', { timeout: 30, fair: false }))
    await vi.advanceTimersByTimeAsync(1000)
    expect(line('race')).toEqual([])
    await holder.release()
    await advanceUntil(() => waiter.status === 'fulfilled', 1000)
    await (waiter.value as Lock).release()
  })

  it('timeout: 0 never queues', async () => {
    const holder = await locks('holder').acquire('once')
    await expect(locks('try').acquire('once', { timeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError)
    expect(store.calls.filter((call) => call.operation === 'create' && call.name !== 'once')).toEqual([])
    await holder.release()
  })

  it('close() gives up the places in line', async () => {
    const holder = await locks('holder').acquire('closing')
    const client = locks('leaving')
    const waiter = track(client.acquire('closing', { timeout: 60 }))
    await advanceUntil(() => line('closing').length === 1, 1000)
    await client.close()
    expect(waiter.status).toBe('rejected')
    expect(line('closing')).toEqual([])
    await holder.release()
  })
})

describe('a server that throttles', () => {
  const throttled = () =>
    new LockUnavailableError({
      server: 'memory',
      problem: 'answered 429',
      outcomeUnknown: false,
      status: 429,
      retryAfterMs: 4000,
    })

  it('an acquire tries again no sooner than the Retry-After', async () => {
    store.failNext('get', throttled)
    const pending = track(locks('patient', { retryInterval: 0.1 }).acquire('busy-server', { timeout: 30 }))
    const reads = () => store.calls.filter((call) => call.operation === 'get').length
    await vi.advanceTimersByTimeAsync(3900)
    expect(reads()).toBe(1)
    await advanceUntil(() => pending.status !== 'pending', 1000)
    expect(reads()).toBe(2)
    expect(pending.status).toBe('fulfilled')
    await (pending.value as Lock).release()
  })

  it('a waiter that cannot join the line tries again no sooner than the Retry-After', async () => {
    const holder = await locks('holder').acquire('busy-line')
    store.failNext('create', throttled)
    const waiter = track(locks('patient', { retryInterval: 0.1 }).acquire('busy-line', { timeout: 30 }))
    const creates = () => store.calls.filter((call) => call.operation === 'create').length
    await vi.advanceTimersByTimeAsync(100)
    const first = creates()
    await vi.advanceTimersByTimeAsync(3800)
    expect(creates()).toBe(first)
    await advanceUntil(() => line('busy-line').length === 1, 1000)
    expect(creates()).toBe(first + 1)
    await holder.release()
    await advanceUntil(() => waiter.status !== 'pending', 1000)
    await (waiter.value as Lock).release()
  })
})

describe('one waiter’s view of the line', () => {
  function waitLine(identity: string) {
    return new WaitLine({
      store,
      namespace: NS,
      leaseName: 'long-line',
      lockName: 'long-line',
      identity,
      durationSeconds: 15,
      annotations: {},
      graceMs: 1000,
      now: () => performance.now(),
      wallNow: () => Date.now(),
    })
  }
  const change = (ticket: LeaseRecord, deleted = false) =>
    ({ kind: 'ticket', ticket, deleted, resourceVersion: ticket.resourceVersion }) as const

  it('is told of a change ahead that may let it move up, not of renewals or later arrivals', async () => {
    const first = deadTicket('long-line', 'first')
    const own = waitLine('own')
    await own.read()
    await own.join()
    const later = deadTicket('long-line', 'later')
    expect(own.apply(change(later))).toBe(false)
    expect(own.apply(change(later, true))).toBe(false)
    const renewed = await store.update(renewedTicket(first, Date.now()))
    expect(own.apply(change(renewed))).toBe(false)
    expect(own.ahead(performance.now(), undefined).count).toBe(1)
    const cleared = await store.update({ ...renewed, holderIdentity: undefined })
    expect(own.apply(change(cleared))).toBe(true)
    expect(own.ahead(performance.now(), undefined).count).toBe(0)
    expect(own.apply(change(cleared, true))).toBe(true)
    await own.leave()
  })

  it('wakes a waiter for a change of the lock or of the line only when nobody is left ahead of it', async () => {
    const first = deadTicket('long-line', 'first')
    const second = waitLine('second')
    const third = waitLine('third')
    await second.join()
    await third.join()
    await second.read()
    await third.read()
    const inboxes = [second, third].map((line) => {
      const wakeup = new Wakeup()
      return { wakeup, inbox: new WaitInbox(wakeup, line, () => performance.now()) }
    })
    /** Which of the two waiters were woken since the last look. */
    const woken = async () => {
      const sleeps = inboxes.map(({ wakeup }) => wakeup.sleep(1, [], true))
      await vi.advanceTimersByTimeAsync(1)
      const notified = await Promise.all(sleeps)
      for (const { inbox } of inboxes) inbox.take()
      return notified
    }
    const lock = (holderIdentity: string | undefined, resourceVersion: string) =>
      ({ type: 'lease', lease: { ...first, name: 'long-line', holderIdentity }, resourceVersion }) as const
    // Someone outside the line holds the lock: both have the first waiter ahead.
    for (const { inbox } of inboxes) inbox.onHub(lock('outsider_1_0', '900'))
    expect(await woken()).toEqual([false, false])
    // The first waiter takes it: its ticket no longer counts, the second is first in line.
    for (const { inbox } of inboxes) inbox.onHub(lock(first.holderIdentity, '901'))
    expect(await woken()).toEqual([true, false])
    // A late replay of the older state does not bring back the older holder.
    for (const { inbox } of inboxes) inbox.onHub(lock('outsider_1_0', '900'))
    expect(await woken()).toEqual([true, false])
    // Its ticket goes: the third still has the second ahead.
    const deletedAt = String(BigInt(third.own?.record.resourceVersion ?? '0') + 1n)
    for (const { inbox } of inboxes)
      inbox.onLine({ kind: 'ticket', ticket: first, deleted: true, resourceVersion: deletedAt })
    expect(await woken()).toEqual([true, false])
    // A change of health always wakes: a waiter may then have to poll.
    for (const { inbox } of inboxes) inbox.onHub({ type: 'health', healthy: false })
    expect(await woken()).toEqual([true, true])
    await second.leave()
    await third.leave()
  })

  it('ignores a change older than what it knows', async () => {
    const first = deadTicket('long-line', 'first')
    const own = waitLine('own')
    await own.join()
    expect(own.apply(change(first, true))).toBe(false)
    expect(own.ahead(performance.now(), undefined).count).toBe(0)
    await own.read()
    expect(own.ahead(performance.now(), undefined).count).toBe(1)
    expect(own.apply({ ...change(first, true), resourceVersion: '1' })).toBe(false)
    expect(own.ahead(performance.now(), undefined).count).toBe(1)
    await own.leave()
  })
})
