/**
 * `locks list` and `locks get` with a fair lock's queue on the real API server: tickets are never
 * shown as locks, WAITING counts them, and `get` lists the waiters in line order (by the
 * resourceVersion of each ticket's creation), whatever their names.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { managedLease } from '../../controller/testing/leases.ts'
import {
  createKubernetesLeaseStore,
  type LeaseRecord,
  NODE_ANNOTATION,
  POD_ANNOTATION,
  renewedTicket,
  SERVICE_ANNOTATION,
  ticketDraft,
} from '../../sdk/internal.ts'
import { locks } from './cli-helpers.ts'
import { adminKubeConfig, createNamespace, kubectl } from './support.ts'

let namespace: string
/** The tickets in the order they were created: their place in line. */
const line: LeaseRecord[] = []

beforeAll(async () => {
  namespace = await createNamespace('cli-queue')
  const store = createKubernetesLeaseStore(adminKubeConfig())
  try {
    await store.create(managedLease(namespace, 'orders', { holder: 'holder-7_1_abcdef', duration: 3600 }))
    await store.create(managedLease(namespace, 'nightly', { holder: undefined, duration: 20 }))
    const wallNow = Date.now()
    // Created out of name order: c, then a, then b.
    for (const [index, waiter] of ['cccc', 'aaaa', 'bbbb'].entries()) {
      line.push(
        await store.create(
          ticketDraft({
            namespace,
            leaseName: 'orders',
            lockName: 'orders',
            identity: `waiter-${waiter}_1_x`,
            durationSeconds: 3600,
            annotations: {
              [SERVICE_ANNOTATION]: 'billing',
              [POD_ANNOTATION]: `billing-${waiter}`,
              [NODE_ANNOTATION]: 'node-a',
            },
            wallNow: wallNow - (3 - index) * 60_000,
            name: `orders.q-${waiter.repeat(4)}`,
          }),
        ),
      )
    }
    // The first in line renews: its resourceVersion is now the newest, its position stays the first.
    const first = line[0] as LeaseRecord
    line[0] = await store.update(renewedTicket(first, Date.now()))
    expect(BigInt(line[0].resourceVersion)).toBeGreaterThan(BigInt((line[2] as LeaseRecord).resourceVersion))
  } finally {
    await store.close?.()
  }
})

const cells = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .map((row) => row.split(/ {3,}/))

describe('locks list with waiters', () => {
  it('shows locks only, with WAITING = the number of tickets naming a waiter', async () => {
    const result = await locks(['list', '-n', namespace])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const rows = cells(result.stdout)
    const header = rows[0] ?? []
    const waiting = header.indexOf('WAITING')
    expect(waiting).toBeGreaterThan(0)
    expect(rows.slice(1).map((row) => [row[0], row[waiting]])).toEqual([
      ['nightly', '0'],
      ['orders', '3'],
    ])
    expect(result.stdout).not.toContain('.q-')
  })

  it('counts them in status.waiting with -o json, and leaves them out of -o name', async () => {
    const json = await locks(['list', '-n', namespace, '-o', 'json'])
    expect(json.code).toBe(0)
    const items = JSON.parse(json.stdout).items as {
      metadata: { name: string }
      status: { waiting: number }
    }[]
    expect(items.map((item) => [item.metadata.name, item.status.waiting])).toEqual([
      ['nightly', 0],
      ['orders', 3],
    ])
    const names = await locks(['list', '-n', namespace, '-o', 'name'])
    expect(names.stdout).toBe('lease.coordination.k8s.io/nightly\nlease.coordination.k8s.io/orders\n')
  })
})

describe('locks get with waiters', () => {
  it('lists the queue in line order: position, waiter, service, pod, how long it has waited', async () => {
    const result = await locks(['get', 'orders', '-n', namespace])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const [lockTable = '', queueTable = ''] = result.stdout.split('\n\n')
    expect(cells(lockTable)[1]?.[0]).toBe('orders')
    const queue = cells(queueTable)
    expect(queue[0]).toEqual(['POSITION', 'HOLDER', 'SERVICE', 'POD', 'WAITING FOR'])
    expect(queue.slice(1).map((row) => row.slice(0, 4))).toEqual([
      ['1', 'waiter-cccc_1_x', 'billing', 'billing-cccc'],
      ['2', 'waiter-aaaa_1_x', 'billing', 'billing-aaaa'],
      ['3', 'waiter-bbbb_1_x', 'billing', 'billing-bbbb'],
    ])
    // They began waiting 3, 2 and 1 minutes before the suite started.
    expect(queue.slice(1).map((row) => row[4])).toEqual([
      expect.stringMatching(/^3m/),
      expect.stringMatching(/^2m/),
      expect.stringMatching(/^(1m|[6-9]\ds|1\d\ds)/),
    ])
  })

  it('puts the queue, in the same order, in status with -o json', async () => {
    const result = await locks(['get', 'orders', '-n', namespace, '-o', 'json'])
    const lease = JSON.parse(result.stdout)
    expect(lease.kind).toBe('Lease')
    expect(lease.status.waiting).toBe(3)
    expect(
      lease.status.queue.map((entry: { position: number; lease: string }) => [entry.position, entry.lease]),
    ).toEqual(line.map((ticket, index) => [index + 1, ticket.name]))
  })

  it('refuses a ticket where a lock is expected, and changes nothing', async () => {
    const ticket = line[1] as LeaseRecord
    for (const args of [
      ['get', ticket.name],
      ['release', ticket.name, '--force'],
    ]) {
      const result = await locks([...args, '-n', namespace])
      expect(result.code).toBe(1)
      expect(result.stdout).toBe('')
      expect(result.stderr).toContain(`lease \`${namespace}/${ticket.name}\` is a ticket`)
      expect(result.stderr).toContain('`locks get orders`')
    }
    const after = await kubectl([
      'get',
      'lease',
      ticket.name,
      '-n',
      namespace,
      '-o',
      'jsonpath={.metadata.resourceVersion}',
    ])
    expect(after.stdout).toBe(ticket.resourceVersion)
  })

  it('kubectl hides tickets with the selector docs/cli.md gives', async () => {
    const result = await kubectl([
      'get',
      'leases',
      '-n',
      namespace,
      '-l',
      '!kube-locks.io/queue-for',
      '-o',
      'name',
    ])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toBe('lease.coordination.k8s.io/nightly\nlease.coordination.k8s.io/orders\n')
  })
})
