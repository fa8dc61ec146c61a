import { afterEach, describe, expect, it } from 'vitest'
import type { LeaseJson } from './api.ts'
import { ExitCode } from './exit-codes.ts'
import { LeaseServer, runLocks } from './testing/lease-server.ts'
import { holderJson, lockJson, ticketJson } from './testing/leases.ts'

let server: LeaseServer | undefined

afterEach(async () => {
  await server?.close()
  server = undefined
})

async function serve(...leases: LeaseJson[]) {
  server = await new LeaseServer(leases).start()
  return server
}

/** Three waiters that joined in the order c, a, b: names, creation and acquire times disagree. */
const waiters = () => [
  ticketJson('orders', 'aaaa', { resourceVersion: '9007199254740993', acquireTime: '2030-01-01T11:59:40Z' }),
  ticketJson('orders', 'bbbb', { resourceVersion: '9007199254740999', acquireTime: '2030-01-01T11:59:50Z' }),
  // Renewed since it joined: its position is what it wrote, not its resourceVersion now.
  {
    ...ticketJson('orders', 'cccc', {
      resourceVersion: '9007199254741111',
      acquireTime: '2030-01-01T11:58:00Z',
    }),
    metadata: {
      ...ticketJson('orders', 'cccc').metadata,
      resourceVersion: '9007199254741111',
      annotations: {
        ...ticketJson('orders', 'cccc').metadata?.annotations,
        'kube-locks.io/position': '900719925474099',
      },
    },
  },
  // Another lock's waiter, and a ticket that names no waiter: not in this queue.
  ticketJson('orders-eu', 'dddd', { resourceVersion: '5' }),
  ticketJson('orders', 'eeee', { resourceVersion: '6', holder: undefined }),
]

describe('locks get', () => {
  it('shows the lock, then its queue in line order', async () => {
    const api = await serve(lockJson('orders'), lockJson('orders-eu'), ...waiters())
    const result = await runLocks(['get', 'orders'], api.kubeconfig())
    expect(result.stderr).toBe('')
    expect(result.code).toBe(ExitCode.ok)
    expect(result.stdout.split('\n').map((line) => line.split(/ {3,}/))).toEqual([
      ['NAME', 'HOLDER', 'SERVICE', 'AGE', 'EXPIRES IN', 'HOLDERS', 'WAITING', 'TRANSITIONS'],
      ['orders', 'holder-1_1_x', '<none>', '60m', '15s', '1', '3', '1'],
      [''],
      ['POSITION', 'HOLDER', 'SERVICE', 'POD', 'WAITING FOR'],
      ['1', 'waiter-cccc_1_x', 'billing', 'pod-cccc', '2m'],
      ['2', 'waiter-aaaa_1_x', 'billing', 'pod-aaaa', '20s'],
      ['3', 'waiter-bbbb_1_x', 'billing', 'pod-bbbb', '10s'],
      [''],
    ])
  })

  it('reads only the lock, its own holder records and its own queue', async () => {
    const api = await serve(lockJson('orders'), ...waiters())
    await runLocks(['get', 'orders'], api.kubeconfig())
    expect(api.requests).toEqual([
      'GET /apis/coordination.k8s.io/v1/namespaces/shop/leases/orders',
      'GET /apis/coordination.k8s.io/v1/namespaces/shop/leases?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dkube-locks%2Ckube-locks.io%2Fholder-of%3Dorders&limit=500',
      'GET /apis/coordination.k8s.io/v1/namespaces/shop/leases?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dkube-locks%2Ckube-locks.io%2Fqueue-for%3Dorders&limit=500',
    ])
  })

  it('puts the queue in status for -o json and yaml', async () => {
    const api = await serve(lockJson('orders'), ...waiters())
    const json = JSON.parse((await runLocks(['get', 'orders', '-o', 'json'], api.kubeconfig())).stdout)
    expect(json.kind).toBe('Lease')
    expect(json.status.waiting).toBe(3)
    expect(
      json.status.queue.map((entry: { position: number; lease: string }) => [entry.position, entry.lease]),
    ).toEqual([
      [1, 'orders.q-cccc'],
      [2, 'orders.q-aaaa'],
      [3, 'orders.q-bbbb'],
    ])
    expect(json.status.queue[0]).toMatchObject({
      holderIdentity: 'waiter-cccc_1_x',
      service: 'billing',
      pod: 'pod-cccc',
      acquireTime: '2030-01-01T11:58:00.000000Z',
      leaseDurationSeconds: 15,
    })
    const yaml = (await runLocks(['get', 'orders', '-o', 'yaml'], api.kubeconfig())).stdout
    expect(yaml).toMatch(/^spec:\n(?: {2}.*\n)+status:\n {2}holding: 1\n {2}mode: exclusive\n {2}queue:\n/m)
  })

  it('shows no queue for a lock nobody waits for', async () => {
    const api = await serve(lockJson('orders'))
    const result = await runLocks(['get', 'orders'], api.kubeconfig())
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(2)
    expect(result.stdout.split('\n')[1]?.split(/ {3,}/).slice(5, 7)).toEqual(['1', '0'])
  })

  it('lists the holders of a semaphore with its mode and limit, and the one beyond the limit in line', async () => {
    const api = await serve(
      lockJson('partner-api', { holder: undefined, mode: 2 }),
      holderJson('partner-api', 'cccc', { resourceVersion: '35', mode: 2 }),
      holderJson('partner-api', 'aaaa', { resourceVersion: '31', mode: 2 }),
      holderJson('partner-api', 'bbbb', { resourceVersion: '90', position: '32', mode: 2 }),
      ticketJson('partner-api', 'q1', { resourceVersion: '34' }),
    )
    const result = await runLocks(['get', 'partner-api'], api.kubeconfig())
    expect(result.stderr).toBe('')
    expect(result.code).toBe(ExitCode.ok)
    const [lock = '', holders = '', line = ''] = result.stdout.split('\n\n')
    expect(lock.split('\n')[1]?.split(/ {3,}/)).toEqual([
      'partner-api',
      '<2 holders>',
      'sync',
      '60m',
      '10s',
      '2/2',
      '2',
      '1',
    ])
    expect(
      holders
        .trimEnd()
        .split('\n')
        .map((row) => row.split(/ {3,}/)),
    ).toEqual([
      ['HOLDER', 'MODE', 'SERVICE', 'POD', 'ACQUIRED', 'RENEWED', 'EXPIRES IN', 'RESOURCEVERSION'],
      ['sync-aaaa_1_x', 'semaphore (limit 2)', 'sync', 'sync-aaaa', '2m', '10s', '10s', '31'],
      ['sync-bbbb_1_x', 'semaphore (limit 2)', 'sync', 'sync-bbbb', '2m', '10s', '10s', '90'],
    ])
    // The ticket joined before the third holder: it comes first.
    expect(
      line
        .trimEnd()
        .split('\n')
        .map((row) => row.split(/ {3,}/).slice(0, 2)),
    ).toEqual([
      ['POSITION', 'HOLDER'],
      ['1', 'waiter-q1_1_x'],
      ['2', 'sync-cccc_1_x'],
    ])
    const json = JSON.parse((await runLocks(['get', 'partner-api', '-o', 'json'], api.kubeconfig())).stdout)
    expect(json.status).toMatchObject({ mode: 'semaphore', limit: 2, holding: 2, waiting: 2 })
    expect(json.status.holders.map((h: { lease: string }) => h.lease)).toEqual([
      'partner-api.h-aaaa',
      'partner-api.h-bbbb',
    ])
    expect(json.status.queue.map((e: { lease: string }) => e.lease)).toEqual([
      'partner-api.q-q1',
      'partner-api.h-cccc',
    ])
  })

  it('finds a shared lock whose lease does not exist yet by its records', async () => {
    const api = await serve(holderJson('reports', 'aaaa', { mode: 'shared' }))
    const result = await runLocks(['get', 'reports'], api.kubeconfig())
    expect(result.stderr).toBe('')
    const [lock = '', holders = ''] = result.stdout.split('\n\n')
    expect(lock.split('\n')[1]?.split(/ {3,}/)).toEqual([
      'reports',
      'sync-aaaa_1_x',
      'sync',
      '<none>',
      '10s',
      'shared ×1',
      '0',
      '0',
    ])
    expect(holders.split('\n')[1]?.split(/ {3,}/).slice(0, 2)).toEqual(['sync-aaaa_1_x', 'shared'])
  })

  it('refuses a holder record where a lock is expected, naming its lock', async () => {
    const api = await serve(lockJson('reports', { holder: undefined }), holderJson('reports', 'aaaa'))
    const result = await runLocks(['get', 'reports.h-aaaa'], api.kubeconfig())
    expect(result).toMatchObject({
      code: ExitCode.failure,
      stdout: '',
      stderr:
        'error: lease `shop/reports.h-aaaa` is a holder record, one holder of shared lock or semaphore `reports`, not a lock: see that lock and its holders with `locks get reports`, release this holder with `locks release reports --holder sync-aaaa_1_x`\n',
    })
  })
})
