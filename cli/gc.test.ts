import { afterEach, describe, expect, it } from 'vitest'
import type { LeaseJson } from './api.ts'
import { ExitCode } from './exit-codes.ts'
import { LeaseServer, runLocks } from './testing/lease-server.ts'
import { lockJson } from './testing/leases.ts'

// `locks gc`: read-only unless --apply; --apply writes what the plan shows, under the preconditions of
// the lease it judged (the controller's rule, in the SDK).

let server: LeaseServer | undefined

afterEach(async () => {
  await server?.close()
  server = undefined
})

/** Held, last renewed at 11:59:55 for 20 s: expired by 12:00:30. */
const expired = lockJson('expired', { resourceVersion: '11' })
/** Free since 11:59:55: past the retention (300 s) by 12:10. */
const idle = lockJson('idle', { holder: undefined, resourceVersion: '12' })
const AT = Date.parse('2030-01-01T12:10:00Z')

async function serve(...leases: LeaseJson[]) {
  server = await new LeaseServer(leases).start()
  return server
}

describe('locks gc', () => {
  it('--dry-run and --apply together are a usage error', async () => {
    const api = await serve(expired)
    const result = await runLocks(['gc', '--dry-run', '--apply'], api.kubeconfig(), { now: AT })
    expect(result.code).toBe(ExitCode.usage)
    expect(result.stderr).toContain('give one of them')
    expect(api.requests).toEqual([])
  })

  it('--dry-run writes nothing', async () => {
    const api = await serve(expired, idle)
    const result = await runLocks(['gc', '--dry-run', '-o', 'name'], api.kubeconfig(), { now: AT })
    expect(result.code).toBe(ExitCode.ok)
    expect(result.stdout).toBe('lease.coordination.k8s.io/expired\nlease.coordination.k8s.io/idle\n')
    expect(api.writes).toEqual([])
  })

  it('--apply frees and deletes under the uid and resourceVersion it judged, and says what it did', async () => {
    const fresh = lockJson('fresh', { resourceVersion: '13' })
    const held = { ...fresh, spec: { ...fresh.spec, leaseDurationSeconds: 3600 } }
    const api = await serve(expired, idle, held)
    api.answerWrite = (method, _path, body) =>
      method === 'PUT' ? { status: 200, body: { ...(body as object) } } : { status: 200, body: {} }
    const result = await runLocks(['gc', '--apply'], api.kubeconfig(), { now: AT })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(ExitCode.ok)
    expect(api.writes).toEqual([
      'PUT /apis/coordination.k8s.io/v1/namespaces/shop/leases/expired',
      'DELETE /apis/coordination.k8s.io/v1/namespaces/shop/leases/idle',
    ])
    const [update, remove] = api.writeBodies as [LeaseJson, { preconditions?: unknown }]
    expect(update.metadata).toMatchObject({ uid: 'uid-expired', resourceVersion: '11' })
    expect(update.spec?.holderIdentity).toBeUndefined()
    expect(remove.preconditions).toEqual({ uid: 'uid-idle', resourceVersion: '12' })
    const rows = result.stdout.trimEnd().split('\n')
    expect(rows[0]).toMatch(/^NAME\s+HOLDER\s+ACTION\s+REASON$/)
    expect(rows[1]).toMatch(/^expired\s+holder-1_1_x\s+freed\s+expired /)
    expect(rows[2]).toMatch(/^idle\s+<none>\s+deleted\s+free for /)
    expect(rows).toHaveLength(3)
  })

  it('--apply leaves a lease that changed since it was read, and says so', async () => {
    const api = await serve(expired, idle)
    api.answerWrite = (method) =>
      method === 'PUT'
        ? { status: 409, body: { kind: 'Status', code: 409, reason: 'Conflict', message: 'modified' } }
        : { status: 404, body: { kind: 'Status', code: 404, reason: 'NotFound', message: 'gone' } }
    const result = await runLocks(['gc', '--apply', '-o', 'json'], api.kubeconfig(), { now: AT })
    expect(result.code).toBe(ExitCode.ok)
    const json = JSON.parse(result.stdout) as {
      dryRun: boolean
      actions: { lease: string; result: string }[]
    }
    expect(json.dryRun).toBe(false)
    expect(json.actions.map((action) => [action.lease, action.result])).toEqual([
      ['expired', 'changed'],
      ['idle', 'gone'],
    ])
    const table = await runLocks(['gc', '--apply'], api.kubeconfig(), { now: AT })
    expect(table.stdout).toMatch(/expired\s+holder-1_1_x\s+none\s+skipped: it changed since it was read/)
    expect(table.stdout).toMatch(/idle\s+<none>\s+none\s+skipped: someone else deleted it/)
  })

  it('--apply -o name lists only the leases it changed', async () => {
    const api = await serve(expired, idle)
    api.answerWrite = (method, _path, body) =>
      method === 'PUT'
        ? { status: 409, body: { kind: 'Status', code: 409, reason: 'Conflict', message: 'modified' } }
        : { status: 200, body: body ?? {} }
    const result = await runLocks(['gc', '--apply', '-o', 'name'], api.kubeconfig(), { now: AT })
    expect(result).toEqual({ code: ExitCode.ok, stdout: 'lease.coordination.k8s.io/idle\n', stderr: '' })
  })
})
