import { describe, expect, it } from 'vitest'
import {
  cell,
  expiresIn,
  formatLabels,
  type LeaseView,
  lockColumns,
  lockRow,
  NONE,
  queueColumns,
  queueRow,
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
      waiting: '0',
      transitions: '3',
      duration: '20s',
      acquired: '60s',
      renewed: '4s',
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
      'WAITING',
      'TRANSITIONS',
      'LEASE',
      'DURATION',
      'ACQUIRED',
      'RENEWED',
      'POD',
      'NODE',
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
