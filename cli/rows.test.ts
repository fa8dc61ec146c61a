import { describe, expect, it } from 'vitest'
import { holderColumns, holderRow, queueColumns, queueRow } from './get-rows.ts'
import {
  cell,
  EXCLUSIVE,
  expiresIn,
  formatLabels,
  holdersCell,
  isLive,
  type LeaseView,
  lockColumns,
  lockRow,
  MIXED,
  modeCell,
  NONE,
  renderTable,
  width,
} from './rows.ts'

const KEYS = { name: 'lock/name', service: 'lock/service', pod: 'lock/pod', node: 'lock/node' }
const NOW = Date.parse('2030-01-01T12:00:00Z')

function lease(overrides: Partial<LeaseView> = {}): LeaseView {
  return {
    namespace: 'shop',
    name: 'orders-eu--abc',
    holderIdentity: 'worker-1_42_x',
    leaseDurationSeconds: 20,
    acquireTime: '2030-01-01T11:59:00.000000Z',
    renewTime: '2030-01-01T11:59:55.500000Z',
    leaseTransitions: 3,
    annotations: {
      'lock/name': 'orders/EU',
      'lock/service': 'billing',
      'lock/pod': 'billing-7',
      'lock/node': 'n1',
    },
    creationTimestamp: '2030-01-01T10:00:00Z',
    ...overrides,
  }
}

describe('expiresIn', () => {
  it('counts down from the last renewal plus the duration', () => {
    expect(expiresIn(lease(), NOW)).toBe('15s')
  })

  it('says how long ago a lease expired', () => {
    expect(expiresIn(lease({ renewTime: '2030-01-01T11:58:00Z' }), NOW)).toBe('expired 100s ago')
  })

  it('falls back to the acquisition time without a renewal', () => {
    expect(expiresIn(lease({ renewTime: undefined, acquireTime: '2030-01-01T11:59:50Z' }), NOW)).toBe('10s')
  })

  it('shows nothing for a free lock and unknown without a duration', () => {
    expect(expiresIn(lease({ holderIdentity: undefined }), NOW)).toBe(NONE)
    expect(expiresIn(lease({ holderIdentity: '' }), NOW)).toBe(NONE)
    expect(expiresIn(lease({ leaseDurationSeconds: undefined }), NOW)).toBe('<unknown>')
  })
})

describe('lockRow', () => {
  it('shows the original lock name and the holder details', () => {
    expect(lockRow(lease(), NOW, KEYS)).toEqual({
      namespace: 'shop',
      name: 'orders/EU',
      lease: 'orders-eu--abc',
      holder: 'worker-1_42_x',
      service: 'billing',
      pod: 'billing-7',
      node: 'n1',
      age: '120m',
      expiresIn: '15s',
      holders: '1',
      waiting: '0',
      transitions: '3',
      duration: '20s',
      acquired: '60s',
      renewed: '4s',
      mode: 'exclusive',
    })
  })

  it('hides holder details of a free lock and falls back to the lease name', () => {
    const row = lockRow(
      lease({ holderIdentity: undefined, annotations: {}, leaseTransitions: undefined }),
      NOW,
      KEYS,
    )
    expect(row).toMatchObject({
      name: 'orders-eu--abc',
      holder: NONE,
      service: NONE,
      expiresIn: NONE,
      transitions: '0',
      acquired: NONE,
    })
  })
})

describe('isLive', () => {
  it('holds while the lease names a holder and has not run out by the times written in it', () => {
    expect(isLive(lease(), NOW)).toBe(true)
    expect(isLive(lease({ renewTime: '2030-01-01T11:59:40Z' }), NOW)).toBe(true)
    expect(isLive(lease({ renewTime: '2030-01-01T11:59:39.999Z' }), NOW)).toBe(false)
    expect(isLive(lease({ holderIdentity: undefined }), NOW)).toBe(false)
    // Without a duration it never runs out.
    expect(isLive(lease({ leaseDurationSeconds: undefined }), NOW)).toBe(true)
  })
})

describe('holdersCell and modeCell', () => {
  it.each([
    [EXCLUSIVE, 1, '1', 'exclusive'],
    [EXCLUSIVE, 0, '0', 'exclusive'],
    [{ kind: 'semaphore', limit: 3 } as const, 2, '2/3', 'semaphore (limit 3)'],
    [{ kind: 'semaphore', limit: 3 } as const, 0, '0/3', 'semaphore (limit 3)'],
    [{ kind: 'shared' } as const, 4, 'shared ×4', 'shared'],
    [{ kind: 'unknown', value: 'quorum' } as const, 2, '2', 'unknown (quorum)'],
  ])('%o held by %i: %s, %s', (mode, count, holders, shown) => {
    expect(holdersCell(mode, count)).toBe(holders)
    expect(modeCell(mode)).toBe(shown)
  })
})

describe('lockRow of a shared lock or a semaphore', () => {
  const free = lease({ holderIdentity: undefined, acquireTime: undefined, leaseTransitions: 0 })
  const record = (suffix: string, overrides: Partial<LeaseView> = {}) =>
    lease({
      name: `orders-eu--abc.h-${suffix}`,
      holderIdentity: `worker-${suffix}_1_x`,
      acquireTime: '2030-01-01T11:58:00Z',
      renewTime: '2030-01-01T11:59:50Z',
      annotations: { 'lock/name': 'orders/EU', 'lock/service': 'billing', 'lock/pod': `pod-${suffix}` },
      ...overrides,
    })
  const semaphore = { kind: 'semaphore', limit: 3 } as const

  it('shows one holder as the holder of a lock', () => {
    const row = lockRow(free, NOW, KEYS, 0, { mode: semaphore, count: 1, holders: [record('a')] })
    expect(row).toMatchObject({
      holder: 'worker-a_1_x',
      service: 'billing',
      pod: 'pod-a',
      expiresIn: '10s',
      holders: '1/3',
      acquired: '2m',
      renewed: '10s',
      mode: 'semaphore (limit 3)',
      lease: 'orders-eu--abc',
      transitions: '0',
    })
  })

  it('sums several up: what they share, the earliest acquisition, the latest renewal, the first expiry', () => {
    const holders = [
      record('a', { acquireTime: '2030-01-01T11:50:00Z', renewTime: '2030-01-01T11:59:45Z' }),
      record('b', { renewTime: '2030-01-01T11:59:58Z' }),
    ]
    const row = lockRow(free, NOW, KEYS, 1, { mode: { kind: 'shared' }, count: 2, holders })
    expect(row).toMatchObject({
      holder: '<2 holders>',
      service: 'billing',
      pod: MIXED,
      node: NONE,
      acquired: '10m',
      renewed: '2s',
      expiresIn: '5s',
      holders: 'shared ×2',
      waiting: '1',
      duration: '20s',
    })
  })

  it('leaves holders whose leases ran out out of the summary while others are live', () => {
    const gone = record('gone', { renewTime: '2030-01-01T11:50:00Z' })
    const row = lockRow(free, NOW, KEYS, 0, { mode: semaphore, count: 1, holders: [gone, record('a')] })
    expect(row).toMatchObject({ holder: 'worker-a_1_x', expiresIn: '10s', holders: '1/3' })
  })

  it('shows a holder whose lease ran out when nobody else holds it, as a lock whose holder is gone', () => {
    const gone = record('gone', { renewTime: '2030-01-01T11:50:00Z' })
    const row = lockRow(free, NOW, KEYS, 0, { mode: semaphore, count: 0, holders: [gone] })
    expect(row).toMatchObject({ holder: 'worker-gone_1_x', expiresIn: 'expired 9m40s ago', holders: '0/3' })
  })

  it('shows a free lock with its mode when nobody holds it', () => {
    const row = lockRow(free, NOW, KEYS, 0, { mode: semaphore, count: 0, holders: [] })
    expect(row).toMatchObject({
      holder: NONE,
      service: NONE,
      expiresIn: NONE,
      holders: '0/3',
      acquired: NONE,
    })
  })

  it('counts an exclusive holder whose lease has run out as no holder', () => {
    expect(lockRow(lease({ renewTime: '2030-01-01T11:58:00Z' }), NOW, KEYS).holders).toBe('0')
  })
})

describe('holderRow', () => {
  it("shows one holder of a shared lock or a semaphore, with its record's resourceVersion", () => {
    const record = {
      ...lease({ name: 'orders-eu--abc.h-aaaa', holderIdentity: 'worker-2_7_y' }),
      resourceVersion: '9007199254740993',
    }
    expect(holderRow(record, { kind: 'semaphore', limit: 3 }, NOW, KEYS)).toEqual({
      holder: 'worker-2_7_y',
      mode: 'semaphore (limit 3)',
      service: 'billing',
      pod: 'billing-7',
      node: 'n1',
      acquired: '60s',
      renewed: '4s',
      expiresIn: '15s',
      resourceVersion: '9007199254740993',
      record: 'orders-eu--abc.h-aaaa',
      duration: '20s',
    })
  })

  it('has columns for the table and more for wide', () => {
    const headers = (wide: boolean) => holderColumns({ wide }).map((column) => column.header)
    const table = ['HOLDER', 'MODE', 'SERVICE', 'POD', 'ACQUIRED', 'RENEWED', 'EXPIRES IN', 'RESOURCEVERSION']
    expect(headers(false)).toEqual(table)
    expect(headers(true)).toEqual([...table, 'RECORD', 'NODE', 'DURATION'])
  })
})

describe('lockRow of a lock with waiters', () => {
  it('counts the waiters given', () => {
    expect(lockRow(lease(), NOW, KEYS, 3).waiting).toBe('3')
    expect(lockRow(lease({ holderIdentity: undefined }), NOW, KEYS, 1).waiting).toBe('1')
  })
})

describe('queueRow', () => {
  const ticket = lease({
    name: 'orders-eu--abc.q-aaaabbbbccccdddd',
    holderIdentity: 'worker-2_7_y',
    leaseDurationSeconds: 15,
    acquireTime: '2030-01-01T11:58:00.000000Z',
    renewTime: '2030-01-01T11:59:58.000000Z',
    annotations: {
      'lock/name': 'orders/EU',
      'lock/service': 'billing',
      'lock/pod': 'billing-9',
      'lock/node': 'n2',
    },
  })

  it("shows the waiter, its place in line and how long it has waited (from the ticket's acquireTime)", () => {
    expect(queueRow(ticket, 2, NOW, KEYS)).toEqual({
      position: '2',
      holder: 'worker-2_7_y',
      service: 'billing',
      pod: 'billing-9',
      node: 'n2',
      waitingFor: '2m',
      ticket: 'orders-eu--abc.q-aaaabbbbccccdddd',
      expiresIn: '13s',
    })
  })

  it('shows <none> for what the waiter did not record', () => {
    expect(
      queueRow(lease({ ...ticket, annotations: {}, acquireTime: undefined }), 1, NOW, KEYS),
    ).toMatchObject({
      service: NONE,
      pod: NONE,
      node: NONE,
      waitingFor: NONE,
    })
  })

  it('has columns for the table and more for wide', () => {
    const headers = (wide: boolean) => queueColumns({ wide }).map((column) => column.header)
    expect(headers(false)).toEqual(['POSITION', 'HOLDER', 'SERVICE', 'POD', 'WAITING FOR'])
    expect(headers(true)).toEqual([
      'POSITION',
      'HOLDER',
      'SERVICE',
      'POD',
      'WAITING FOR',
      'TICKET',
      'NODE',
      'EXPIRES IN',
    ])
  })
})

describe('lockColumns', () => {
  it('adds NAMESPACE with -A and details with wide, like kubectl', () => {
    const headers = (options: { allNamespaces: boolean; wide: boolean }) =>
      lockColumns(options).map((column) => column.header)
    expect(headers({ allNamespaces: false, wide: false })).toEqual([
      'NAME',
      'HOLDER',
      'SERVICE',
      'AGE',
      'EXPIRES IN',
      'HOLDERS',
      'WAITING',
      'TRANSITIONS',
    ])
    expect(headers({ allNamespaces: true, wide: true })).toEqual([
      'NAMESPACE',
      'NAME',
      'HOLDER',
      'SERVICE',
      'AGE',
      'EXPIRES IN',
      'HOLDERS',
      'WAITING',
      'TRANSITIONS',
      'LEASE',
      'DURATION',
      'ACQUIRED',
      'RENEWED',
      'POD',
      'NODE',
      'MODE',
    ])
  })
})

describe('renderTable', () => {
  it('separates columns by three spaces and leaves the last one unpadded', () => {
    const { text } = renderTable(
      ['NAME', 'HOLDER', 'AGE'],
      [
        ['a', 'worker-1', '5s'],
        ['longer-name', 'w', '10m'],
      ],
    )
    expect(text).toBe(
      [
        'NAME          HOLDER     AGE',
        'a             worker-1   5s',
        'longer-name   w          10m',
        '',
      ].join('\n'),
    )
  })

  it('omits the header row and keeps widths across calls', () => {
    const first = renderTable(['NAME', 'AGE'], [['a', '1s']])
    const next = renderTable(undefined, [['bb', '2s']], first.widths)
    expect(next.text).toBe('bb     2s\n')
  })

  it('measures characters, not UTF-16 units', () => {
    // An emoji takes two columns on a terminal: `🔒x` is as wide as `abc`.
    expect(
      renderTable(undefined, [
        ['🔒x', 'y'],
        ['abc', 'z'],
      ]).text,
    ).toBe('🔒x   y\nabc   z\n')
  })

  it('lines up CJK and emoji names by their width on a terminal', () => {
    const { text } = renderTable(
      ['NAME', 'HOLDER'],
      [
        ['注文-東京', 'a'],
        ['🔒🔑', 'b'],
        ['e\u0301t\u00e9', 'c'],
        ['plain-name', 'd'],
      ],
    )
    const lines = text.trimEnd().split('\n')
    // Every HOLDER cell starts at the same terminal column: 10 (the widest name) + 3.
    for (const line of lines) expect(width(line.slice(0, line.lastIndexOf(' ') + 1))).toBe(13)
    expect(width('注文-東京')).toBe(9)
    expect(width('🔒🔑')).toBe(4)
    expect(width('e\u0301t\u00e9')).toBe(3)
  })
})

describe('formatLabels', () => {
  it('prints labels by key as k=v pairs, <none> when there are none', () => {
    expect(formatLabels({ team: 'payments', app: 'shop' })).toBe('app=shop,team=payments')
    expect(formatLabels({})).toBe('<none>')
    expect(formatLabels(undefined)).toBe('<none>')
  })
})

describe('cell', () => {
  it('escapes line breaks and tabs so one lock stays one row', () => {
    expect(cell('a\nb\tc')).toBe('a\\nb\\tc')
    expect(cell('orders / EU west')).toBe('orders / EU west')
  })
})
