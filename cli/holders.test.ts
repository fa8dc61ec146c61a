import { describe, expect, it } from 'vitest'
import { absentLock, HolderRecords, holderState, lineOf, lockModeOf, withAbsentLocks } from './holders.ts'
import type { Item } from './output.ts'
import { itemOf } from './session.ts'
import { holderJson, lockJson, ticketJson } from './testing/leases.ts'

const NOW = Date.parse('2030-01-01T12:00:00Z')
const names = (items: readonly Item[]) => items.map((item) => item.view.name)

describe('lockModeOf', () => {
  it('reads the mode annotations, and keeps a value it cannot read', () => {
    expect(lockModeOf({})).toBeUndefined()
    expect(lockModeOf({ 'kube-locks.io/mode': 'shared' })).toEqual({ kind: 'shared' })
    expect(lockModeOf({ 'kube-locks.io/mode': 'semaphore', 'kube-locks.io/limit': '3' })).toEqual({
      kind: 'semaphore',
      limit: 3,
    })
    expect(lockModeOf({ 'kube-locks.io/mode': 'quorum' })).toEqual({ kind: 'unknown', value: 'quorum' })
  })
})

describe('holderState', () => {
  const free = itemOf(lockJson('partner-api', { holder: undefined, mode: 3 }))
  const held = itemOf(lockJson('partner-api', { holder: 'exclusive-1_1_x' }))
  const record = (suffix: string, options: Parameters<typeof holderJson>[2] = {}) =>
    itemOf(holderJson('partner-api', suffix, options))
  /** Holders of a semaphore of `limit`, created in the order c, a, b; c has renewed since (its position is what it wrote). */
  const line = (limit: number) => ({
    c: record('cccc', { resourceVersion: '90', position: '31', mode: limit }),
    a: record('aaaa', { resourceVersion: '32', mode: limit }),
    b: record('bbbb', { resourceVersion: '33', mode: limit }),
  })
  it.each([
    {
      case: 'a semaphore within its limit',
      limit: 3,
      records: ({ a, b, c }: ReturnType<typeof line>) => [b, a, c],
      holders: ['partner-api.h-cccc', 'partner-api.h-aaaa', 'partner-api.h-bbbb'],
      count: 3,
      waiters: [],
    },
    {
      case: 'a semaphore with more live records than places: the last in line wait',
      limit: 2,
      records: ({ a, b, c }: ReturnType<typeof line>) => [b, a, c],
      holders: ['partner-api.h-cccc', 'partner-api.h-aaaa'],
      count: 2,
      waiters: ['partner-api.h-bbbb'],
    },
    {
      case: 'a record whose lease ran out takes no place, but is shown',
      limit: 2,
      records: ({ a, b }: ReturnType<typeof line>) => [
        b,
        a,
        record('cccc', { resourceVersion: '31', renewTime: '2030-01-01T11:50:00Z', mode: 2 }),
      ],
      holders: ['partner-api.h-cccc', 'partner-api.h-aaaa', 'partner-api.h-bbbb'],
      count: 2,
      waiters: [],
    },
    {
      case: 'records that name no holder, and those of another lock, are left out',
      limit: 3,
      records: ({ a }: ReturnType<typeof line>) => [
        a,
        record('free', { holder: undefined }),
        itemOf(holderJson('partner-api-eu', 'dddd')),
      ],
      holders: ['partner-api.h-aaaa'],
      count: 1,
      waiters: [],
    },
  ])('$case', ({ limit, records, holders, count, waiters }) => {
    const state = holderState(free, records(line(limit)), NOW)
    expect(state.mode).toEqual({ kind: 'semaphore', limit })
    expect(names(state.holders)).toEqual(holders)
    expect(state.count).toBe(count)
    expect(names(state.waiters)).toEqual(waiters)
    expect(state.exclusiveWaits).toBe(false)
  })

  it('is exclusive, held by its lease, when no record is live, whatever the mark says', () => {
    const marked = itemOf(lockJson('partner-api', { holder: 'exclusive-1_1_x', mode: 3 }))
    expect(holderState(marked, [], NOW)).toMatchObject({ mode: { kind: 'exclusive' }, count: 1 })
    expect(holderState(held, [], NOW)).toMatchObject({ mode: { kind: 'exclusive' }, count: 1 })
    const gone = itemOf(lockJson('partner-api', { holder: 'exclusive-1_1_x' }))
    const expired = { ...gone, view: { ...gone.view, renewTime: '2030-01-01T11:00:00.000000Z' } }
    expect(holderState(expired, [], NOW)).toMatchObject({ mode: { kind: 'exclusive' }, count: 0 })
  })

  it('takes the mark of a free lease when nobody holds it: 0 of its limit', () => {
    expect(holderState(free, [], NOW)).toMatchObject({ mode: { kind: 'semaphore', limit: 3 }, count: 0 })
    const plain = itemOf(lockJson('partner-api', { holder: undefined }))
    expect(holderState(plain, [], NOW)).toMatchObject({ mode: { kind: 'exclusive' }, count: 0 })
  })

  it("counts the lease's exclusive holder as the first waiter while live records hold the lock", () => {
    const shared = [
      record('aaaa', { mode: 'shared' }),
      record('bbbb', { mode: 'shared', resourceVersion: '33' }),
    ]
    const state = holderState(held, shared, NOW)
    expect(state).toMatchObject({ mode: { kind: 'shared' }, count: 2, exclusiveWaits: true })
    const tickets = [itemOf(ticketJson('partner-api', 'q1', { resourceVersion: '40' }))]
    expect(names(lineOf(held, tickets, state))).toEqual(['partner-api', 'partner-api.q-q1'])
  })

  it('puts the waiting semaphore holders in line with the tickets, by the resourceVersion of their creation', () => {
    const one = line(1)
    const state = holderState(free, [one.a, one.b, one.c], NOW)
    expect(names(state.holders)).toEqual(['partner-api.h-cccc'])
    expect(names(state.waiters)).toEqual(['partner-api.h-aaaa', 'partner-api.h-bbbb'])
    const ticket = itemOf(ticketJson('partner-api', 'q1', { resourceVersion: '325' }))
    // Positions 32 (a), 33 (b) and 325: compared as numbers, not as text.
    expect(names(lineOf(free, [ticket], state))).toEqual([
      'partner-api.h-aaaa',
      'partner-api.h-bbbb',
      'partner-api.q-q1',
    ])
  })
})

describe('HolderRecords and absent locks', () => {
  const records = new HolderRecords(
    [
      holderJson('partner-api', 'aaaa'),
      holderJson('partner-api', 'bbbb', { namespace: 'other' }),
      holderJson('new-lock', 'cccc', { lockName: 'new lock' }),
      holderJson('idle', 'dddd', { holder: undefined }),
    ].map(itemOf),
  )

  it('keeps records by namespace and lock', () => {
    const lock = itemOf(lockJson('partner-api'))
    expect(names(records.of(lock))).toEqual(['partner-api.h-aaaa'])
    expect(records.keys().sort()).toEqual([
      'other/partner-api',
      'shop/idle',
      'shop/new-lock',
      'shop/partner-api',
    ])
  })

  it('makes a lock for records whose lease is missing, while one of them names a holder', () => {
    const all = withAbsentLocks([itemOf(lockJson('partner-api'))], records, true)
    expect(all.map((item) => [item.view.namespace, item.view.name, item.absent === true])).toEqual([
      ['other', 'partner-api', true],
      ['shop', 'new-lock', true],
      ['shop', 'partner-api', false],
    ])
    expect(all[1]?.view.annotations['kube-locks.io/name']).toBe('new lock')
    expect(withAbsentLocks([], records, false)).toEqual([])
  })

  it('gives an absent lock no uid or resourceVersion in its object', () => {
    const lock = absentLock('shop', 'new-lock', records.itemsOf('shop/new-lock'))
    expect(lock.json.metadata).toEqual({
      name: 'new-lock',
      namespace: 'shop',
      annotations: { 'kube-locks.io/name': 'new lock' },
    })
  })
})
