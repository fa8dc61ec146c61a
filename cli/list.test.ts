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
    expect(rows(result.stdout).map((row) => [row[0], row[5]])).toEqual([
      ['NAME', 'WAITING'],
      ['orders', '2'],
      ['nightly', '1'],
    ])
    expect(result.stdout).not.toContain('.q-')
  })

  it('asks the server for locks without tickets, and for the tickets apart, whatever -l selects', async () => {
    const api = await serve(lockJson('orders'), ticketJson('orders', 'a'))
    const result = await runLocks(['list', '-l', 'team=payments'], api.kubeconfig())
    expect(result.code).toBe(ExitCode.ok)
    const selectors = api.requests.map((request) =>
      new URL(request.split(' ')[1] ?? '', 'http://x').searchParams.get('labelSelector'),
    )
    expect(selectors.sort()).toEqual([
      'app.kubernetes.io/managed-by=kube-locks,!kube-locks.io/queue-for,team=payments',
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
      ['orders', { waiting: 1 }],
      ['idle', { waiting: 0 }],
    ])
    const yaml = await runLocks(['list', '-o', 'yaml'], api.kubeconfig())
    expect(yaml.stdout).toContain('    status:\n      waiting: 1\n')
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
    expect(rows(result.stdout).map((row) => [row[0], row[1], row[5]])).toEqual([
      ['NAME', 'HOLDER', 'WAITING'],
      ['orders', 'holder-1_1_x', '0'],
      ['orders', 'holder-1_1_x', '1'],
      ['orders', 'holder-1_1_x', '2'],
      ['orders', 'holder-1_1_x', '1'],
      ['orders', 'next_1_y', '1'],
    ])
  })
})
