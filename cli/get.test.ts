import { afterEach, describe, expect, it } from 'vitest'
import type { LeaseJson } from './api.ts'
import { ExitCode } from './exit-codes.ts'
import { LeaseServer, runLocks } from './testing/lease-server.ts'
import { lockJson, ticketJson } from './testing/leases.ts'

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
      ['NAME', 'HOLDER', 'SERVICE', 'AGE', 'EXPIRES IN', 'WAITING', 'TRANSITIONS'],
      ['orders', 'holder-1_1_x', '<none>', '60m', '15s', '3', '1'],
      [''],
      ['POSITION', 'HOLDER', 'SERVICE', 'POD', 'WAITING FOR'],
      ['1', 'waiter-cccc_1_x', 'billing', 'pod-cccc', '2m'],
      ['2', 'waiter-aaaa_1_x', 'billing', 'pod-aaaa', '20s'],
      ['3', 'waiter-bbbb_1_x', 'billing', 'pod-bbbb', '10s'],
      [''],
    ])
  })

  it('reads only the lock and its own queue', async () => {
    const api = await serve(lockJson('orders'), ...waiters())
    await runLocks(['get', 'orders'], api.kubeconfig())
    expect(api.requests).toEqual([
      'GET /apis/coordination.k8s.io/v1/namespaces/shop/leases/orders',
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
    expect(yaml).toMatch(/^spec:\n(?: {2}.*\n)+status:\n {2}queue:\n/m)
  })

  it('shows no queue for a lock nobody waits for', async () => {
    const api = await serve(lockJson('orders'))
    const result = await runLocks(['get', 'orders'], api.kubeconfig())
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(2)
    expect(result.stdout).toContain('   0   ')
  })
})
