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

const rows = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .map((line) => line.split(/ {3,}/))

describe('locks list', () => {
  it('shows locks only, with a WAITING column that counts the waiters of each', async () => {
    const api = await serve(
      lockJson('orders'),
      lockJson('nightly', { holder: undefined }),
      ticketJson('orders', 'b', { resourceVersion: '31' }),
      ticketJson('orders', 'a', { resourceVersion: '32' }),
      // names no waiter: not counted
      ticketJson('orders', 'c', { resourceVersion: '33', holder: undefined }),
      ticketJson('nightly', 'd', { resourceVersion: '34' }),
      // in another namespace: not this lock's
      ticketJson('orders', 'e', { resourceVersion: '35', namespace: 'other' }),
    )
    const result = await runLocks(['list'], api.kubeconfig())
    expect(result.stderr).toBe('')
    expect(result.code).toBe(ExitCode.ok)
    expect(rows(result.stdout).map((row) => [row[0], row[5], row[6]])).toEqual([
      ['NAME', 'HOLDERS', 'WAITING'],
      ['orders', '1', '2'],
      ['nightly', '0', '1'],
    ])
    expect(result.stdout).not.toContain('.q-')
  })

  it('asks the server for locks without tickets nor holder records, and for those apart, whatever -l selects', async () => {
    const api = await serve(lockJson('orders'), ticketJson('orders', 'a'))
    const result = await runLocks(['list', '-l', 'team=payments'], api.kubeconfig())
    expect(result.code).toBe(ExitCode.ok)
    const selectors = api.requests.map((request) =>
      new URL(request.split(' ')[1] ?? '', 'http://x').searchParams.get('labelSelector'),
    )
    expect(selectors.sort()).toEqual([
      'app.kubernetes.io/managed-by=kube-locks,!kube-locks.io/queue-for,!kube-locks.io/holder-of,team=payments',
      'app.kubernetes.io/managed-by=kube-locks,kube-locks.io/holder-of',
      'app.kubernetes.io/managed-by=kube-locks,kube-locks.io/queue-for',
    ])
  })

  it('says no locks are found when there are only tickets', async () => {
    const api = await serve(ticketJson('orders', 'a'))
    const result = await runLocks(['list'], api.kubeconfig())
    expect(result).toMatchObject({
      code: ExitCode.ok,
      stdout: '',
      stderr: 'No locks found in namespace `shop`.\n',
    })
  })

  it('puts the count in status.waiting of each lock in json and yaml; -o name lists locks and reads no tickets', async () => {
    const api = await serve(
      lockJson('orders'),
      lockJson('idle', { holder: undefined }),
      ticketJson('orders', 'a'),
    )
    const json = JSON.parse((await runLocks(['list', '-o', 'json'], api.kubeconfig())).stdout)
    expect(json.kind).toBe('List')
    expect(
      json.items.map((item: { metadata: { name: string }; status: unknown }) => [
        item.metadata.name,
        item.status,
      ]),
    ).toEqual([
      ['orders', { waiting: 1, holding: 1, mode: 'exclusive' }],
      ['idle', { waiting: 0, holding: 0, mode: 'exclusive' }],
    ])
    const yaml = await runLocks(['list', '-o', 'yaml'], api.kubeconfig())
    expect(yaml.stdout).toContain('    status:\n      holding: 1\n      mode: exclusive\n      waiting: 1\n')
    const before = api.requests.length
    const names = await runLocks(['list', '-o', 'name'], api.kubeconfig())
    expect(names.stdout).toBe('lease.coordination.k8s.io/orders\nlease.coordination.k8s.io/idle\n')
    expect(api.requests.slice(before)).toHaveLength(1)
  })

  it('with -w never prints a ticket as a lock, and prints the lock again when its count of waiters changes', async () => {
    const api = await serve(lockJson('orders'))
    const stop = new AbortController()
    const ticket = ticketJson('orders', 'a', { resourceVersion: '41' })
    let step = 0
    const result = await runLocks(['list', '-w'], api.kubeconfig(), {
      signal: stop.signal,
      onStdout: (stdout) => {
        const lines = stdout.trimEnd().split('\n').length
        // Events go out once the watches are open, one at a time as each is printed.
        setTimeout(async () => {
          while (api.watching(ticket) === 0 || api.watching(lockJson('orders')) === 0) {
            await new Promise((resolve) => setTimeout(resolve, 5))
          }
          if (lines === 2 && step === 0) {
            step = 1
            api.push('ADDED', ticket)
            // A renewal changes no count: nothing printed.
            api.push('MODIFIED', { ...ticket, metadata: { ...ticket.metadata, resourceVersion: '42' } })
            api.push('ADDED', ticketJson('orders', 'b', { resourceVersion: '43' }))
          } else if (lines === 4 && step === 1) {
            step = 2
            api.push('DELETED', ticket)
          } else if (lines === 5 && step === 2) {
            step = 3
            api.push('MODIFIED', lockJson('orders', { holder: 'next_1_y', resourceVersion: '50' }))
          } else if (lines === 6) {
            stop.abort('SIGINT')
          }
        }, 0)
      },
    })
    expect(result.code).toBe(130)
    expect(result.stderr).toBe('')
    expect(rows(result.stdout).map((row) => [row[0], row[1], row[6]])).toEqual([
      ['NAME', 'HOLDER', 'WAITING'],
      ['orders', 'holder-1_1_x', '0'],
      ['orders', 'holder-1_1_x', '1'],
      ['orders', 'holder-1_1_x', '2'],
      ['orders', 'holder-1_1_x', '1'],
      ['orders', 'next_1_y', '1'],
    ])
  })

  it("shows holder records in their lock's row, never as rows of their own", async () => {
    const api = await serve(
      lockJson('partner-api', { holder: undefined, mode: 3 }),
      holderJson('partner-api', 'aaaa', { resourceVersion: '31' }),
      holderJson('partner-api', 'bbbb', { resourceVersion: '32' }),
      lockJson('reports', { holder: undefined, mode: 'shared' }),
      ...['a', 'b', 'c', 'd'].map((s, i) =>
        holderJson('reports', s.repeat(4), { mode: 'shared', resourceVersion: String(40 + i) }),
      ),
      lockJson('idle', { holder: undefined, mode: 3 }),
      lockJson('nightly'),
    )
    const result = await runLocks(['list'], api.kubeconfig())
    expect(result.stderr).toBe('')
    expect(result.code).toBe(ExitCode.ok)
    const table = rows(result.stdout)
    expect(table[0]).toEqual([
      'NAME',
      'HOLDER',
      'SERVICE',
      'AGE',
      'EXPIRES IN',
      'HOLDERS',
      'WAITING',
      'TRANSITIONS',
    ])
    expect(table.slice(1).map((row) => [row[0], row[1], row[2], row[4], row[5], row[6]])).toEqual([
      ['partner-api', '<2 holders>', 'sync', '10s', '2/3', '0'],
      ['reports', '<4 holders>', 'sync', '10s', 'shared ×4', '0'],
      ['idle', '<none>', '<none>', '<none>', '0/3', '0'],
      ['nightly', 'holder-1_1_x', '<none>', '15s', '1', '0'],
    ])
    expect(result.stdout).not.toContain('.h-')
  })

  it('counts a semaphore holder beyond the limit as waiting, and lists the holders in json', async () => {
    const api = await serve(
      lockJson('partner-api', { holder: undefined, mode: 1 }),
      holderJson('partner-api', 'bbbb', { resourceVersion: '32', mode: 1 }),
      holderJson('partner-api', 'aaaa', { resourceVersion: '31', mode: 1 }),
    )
    const table = rows((await runLocks(['list'], api.kubeconfig())).stdout)
    expect(table[1]?.slice(0, 2)).toEqual(['partner-api', 'sync-aaaa_1_x'])
    expect(table[1]?.slice(5, 7)).toEqual(['1/1', '1'])
    const json = JSON.parse((await runLocks(['list', '-o', 'json'], api.kubeconfig())).stdout)
    expect(json.items).toHaveLength(1)
    expect(json.items[0].status).toEqual({
      waiting: 1,
      holding: 1,
      mode: 'semaphore',
      limit: 1,
      holders: [
        {
          lease: 'partner-api.h-aaaa',
          holderIdentity: 'sync-aaaa_1_x',
          service: 'sync',
          pod: 'sync-aaaa',
          acquireTime: '2030-01-01T11:58:00.000000Z',
          renewTime: '2030-01-01T11:59:50.000000Z',
          leaseDurationSeconds: 20,
          resourceVersion: '31',
        },
      ],
    })
    const wide = rows((await runLocks(['list', '-o', 'wide'], api.kubeconfig())).stdout)
    expect(wide[0]?.at(-1)).toBe('MODE')
    expect(wide[1]?.at(-1)).toBe('semaphore (limit 1)')
  })

  it('shows a lock whose lease does not exist yet from its records, but not under -l nor for -o name', async () => {
    const api = await serve(
      lockJson('b-lock'),
      holderJson('a-new', 'aaaa', { mode: 'shared', lockName: 'a new' }),
      holderJson('c-gone', 'cccc', { holder: undefined }),
    )
    const table = rows((await runLocks(['list'], api.kubeconfig())).stdout)
    expect(table.slice(1).map((row) => [row[0], row[1], row[3], row[5], row[7]])).toEqual([
      ['a new', 'sync-aaaa_1_x', '<none>', 'shared ×1', '0'],
      ['b-lock', 'holder-1_1_x', '60m', '1', '1'],
    ])
    const json = JSON.parse((await runLocks(['list', '-o', 'json'], api.kubeconfig())).stdout)
    expect(json.items[0].metadata).toEqual({
      name: 'a-new',
      namespace: 'shop',
      annotations: { 'kube-locks.io/name': 'a new' },
    })
    expect((await runLocks(['list', '-l', 'team=x'], api.kubeconfig())).stdout).not.toContain('a new')
    expect((await runLocks(['list', '-o', 'name'], api.kubeconfig())).stdout).toBe(
      'lease.coordination.k8s.io/b-lock\n',
    )
  })

  it('with -w prints a lock again when its holders change, not when one renews', async () => {
    const api = await serve(lockJson('partner-api', { holder: undefined, mode: 3 }))
    const stop = new AbortController()
    const first = holderJson('partner-api', 'aaaa', { resourceVersion: '41' })
    let step = 0
    const result = await runLocks(['list', '-w'], api.kubeconfig(), {
      signal: stop.signal,
      onStdout: (stdout) => {
        const lines = stdout.trimEnd().split('\n').length
        setTimeout(async () => {
          while (api.watching(first) === 0 || api.watching(lockJson('partner-api')) === 0) {
            await new Promise((resolve) => setTimeout(resolve, 5))
          }
          if (lines === 2 && step === 0) {
            step = 1
            api.push('ADDED', first)
            // A renewal changes no holder: nothing printed.
            api.push('MODIFIED', { ...first, metadata: { ...first.metadata, resourceVersion: '42' } })
            api.push('ADDED', holderJson('partner-api', 'bbbb', { resourceVersion: '43' }))
          } else if (lines === 4 && step === 1) {
            step = 2
            api.push('DELETED', first)
          } else if (lines === 5 && step === 2) {
            step = 3
            // A lock whose lease does not exist yet comes into view with its first holder.
            api.push('ADDED', holderJson('fresh', 'cccc', { mode: 'shared' }))
          } else if (lines === 6) {
            stop.abort('SIGINT')
          }
        }, 0)
      },
    })
    expect(result.code).toBe(130)
    expect(result.stderr).toBe('')
    expect(rows(result.stdout).map((row) => [row[0], row[1], row[5]])).toEqual([
      ['NAME', 'HOLDER', 'HOLDERS'],
      ['partner-api', '<none>', '0/3'],
      ['partner-api', 'sync-aaaa_1_x', '1/3'],
      ['partner-api', '<2 holders>', '2/3'],
      ['partner-api', 'sync-bbbb_1_x', '1/3'],
      ['fresh', 'sync-cccc_1_x', 'shared ×1'],
    ])
  })
})
