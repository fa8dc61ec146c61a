import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { LeaseJson } from './api.ts'
import { ExitCode } from './exit-codes.ts'
import { LeaseServer, runLocks } from './testing/lease-server.ts'
import { lockJson, ticketJson } from './testing/leases.ts'

/** No command acts on a waiter's ticket as if it were a lock. */

let server: LeaseServer | undefined

afterEach(async () => {
  await server?.close()
  server = undefined
})

async function serve(...leases: LeaseJson[]) {
  server = await new LeaseServer(leases).start()
  return server
}

const TICKET = 'orders.q-abcdefghijklmnop'
const refusal =
  "error: lease `shop/orders.q-abcdefghijklmnop` is a ticket, a waiter's place in the queue of lock `orders`, not a lock: see that lock and its queue with `locks get orders`; a ticket goes away when its waiter stops waiting, or when the controller sees that its waiter is gone\n"

describe('a ticket is never taken for a lock', () => {
  it('by get', async () => {
    const api = await serve(lockJson('orders'), ticketJson('orders', 'abcdefghijklmnop'))
    for (const name of [TICKET, `lease.coordination.k8s.io/${TICKET}`]) {
      const result = await runLocks(['get', name], api.kubeconfig())
      expect(result).toEqual({ code: ExitCode.failure, stdout: '', stderr: refusal })
    }
  })

  it('by release, with or without --force or --holder, which writes nothing', async () => {
    const api = await serve(lockJson('orders'), ticketJson('orders', 'abcdefghijklmnop'))
    for (const flags of [[], ['--force'], ['--holder', 'waiter-abcdefghijklmnop_1_x'], ['--timeout', '0']]) {
      const result = await runLocks(['release', TICKET, ...flags], api.kubeconfig())
      expect(result).toEqual({ code: ExitCode.failure, stdout: '', stderr: refusal })
    }
    expect(api.writes).toEqual([])
  })

  it('by run, which neither writes nor runs the command', async () => {
    const api = await serve(lockJson('orders'), ticketJson('orders', 'abcdefghijklmnop'))
    const dir = mkdtempSync(join(tmpdir(), 'locks-run-ticket-'))
    try {
      const marker = join(dir, 'ran')
      const result = await runLocks(
        ['run', TICKET, '--timeout', '0', '--', 'touch', marker],
        api.kubeconfig(),
      )
      expect(result.code).toBe(ExitCode.failure)
      expect(result.stdout).toBe('')
      expect(result.stderr).toBe(
        "error: lock name `orders.q-abcdefghijklmnop` is the name of lease `shop/orders.q-abcdefghijklmnop`, a ticket: a waiter's place in the queue of lock `orders`; it is not a lock and run leaves it alone: choose another lock name\n",
      )
      expect(() => readFileSync(marker)).toThrow()
      expect(api.writes).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('by gc --dry-run, which lists tickets to delete, never to free', async () => {
    const api = await serve(
      lockJson('orders'),
      ticketJson('orders', 'abcdefghijklmnop', { acquireTime: '2030-01-01T11:00:00Z' }),
    )
    const result = await runLocks(['gc', '--dry-run', '-o', 'json'], api.kubeconfig())
    expect(result.code).toBe(ExitCode.ok)
    expect(JSON.parse(result.stdout).actions).toEqual([
      {
        namespace: 'shop',
        name: 'orders',
        lease: TICKET,
        kind: 'ticket',
        action: 'delete',
        reason: 'ticket expired 59m ago (duration 15s + grace 2s): its waiter is gone',
        holder: 'waiter-abcdefghijklmnop_1_x',
        resourceVersion: '20',
      },
    ])
  })
})
