import { afterEach, describe, expect, it } from 'vitest'
import type { LeaseJson } from './api.ts'
import { ExitCode } from './exit-codes.ts'
import { LeaseServer, runLocks } from './testing/lease-server.ts'
import { holderJson, lockJson } from './testing/leases.ts'

let server: LeaseServer | undefined

afterEach(async () => {
  await server?.close()
  server = undefined
})

/** A semaphore of 3 held by two, on a server that takes every write but those to `refused`. */
async function serve(options: { refused?: string; lock?: LeaseJson } = {}) {
  server = await new LeaseServer([
    options.lock ?? lockJson('partner-api', { holder: undefined, mode: 3 }),
    holderJson('partner-api', 'aaaa', { resourceVersion: '31' }),
    holderJson('partner-api', 'bbbb', { resourceVersion: '32' }),
    // Freed by the controller already: nobody to release.
    holderJson('partner-api', 'cccc', { resourceVersion: '33', holder: undefined }),
  ]).start()
  server.answerWrite = (method, path, body) => {
    if (method === 'PUT' && path.endsWith(`/${options.refused}`)) {
      return { status: 409, body: { kind: 'Status', code: 409, reason: 'Conflict', message: 'modified' } }
    }
    const lease = body as LeaseJson
    return { status: 200, body: { ...lease, metadata: { ...lease.metadata, resourceVersion: '99' } } }
  }
  return server
}

const LEASES = '/apis/coordination.k8s.io/v1/namespaces/shop/leases'

describe('locks release of a semaphore or a shared lock', () => {
  it('with --holder frees that holder’s record only, under the uid and resourceVersion it read', async () => {
    const api = await serve()
    const result = await runLocks(['release', 'partner-api', '--holder', 'sync-bbbb_1_x'], api.kubeconfig())
    expect(result).toEqual({
      code: ExitCode.ok,
      stdout:
        'lock "partner-api" in namespace `shop`: holder "sync-bbbb_1_x" released (holder record partner-api.h-bbbb, resourceVersion 32 -> 99)\n',
      stderr: '',
    })
    expect(api.writes).toEqual([`PUT ${LEASES}/partner-api.h-bbbb`])
    const written = api.writeBodies[0] as LeaseJson
    expect(written.metadata).toMatchObject({ uid: 'uid-partner-api.h-bbbb', resourceVersion: '32' })
    expect(written.spec?.holderIdentity).toBeUndefined()
    // The record still says what it belongs to; only the holder's annotations go.
    expect(written.metadata?.annotations).toMatchObject({ 'kube-locks.io/holds': 'partner-api' })
    expect(written.metadata?.annotations?.['kube-locks.io/pod']).toBeUndefined()
  })

  it('with a --holder that holds nothing names the holders and changes nothing', async () => {
    const api = await serve()
    const result = await runLocks(['release', 'partner-api', '--holder', 'nobody'], api.kubeconfig())
    expect(result).toEqual({
      code: ExitCode.failure,
      stdout: '',
      stderr:
        'error: lock `partner-api` in namespace `shop` is held by `sync-aaaa_1_x`, `sync-bbbb_1_x`, not by `nobody`; nothing was changed: check --holder, or see `locks get partner-api`\n',
    })
    expect(api.writes).toEqual([])
  })

  it('with --force frees every holder, and the exclusive holder of the lease too', async () => {
    const api = await serve({ lock: lockJson('partner-api', { holder: 'exclusive-1_1_x', mode: 3 }) })
    const result = await runLocks(['release', 'partner-api', '--force'], api.kubeconfig())
    expect(result.stderr).toBe('')
    expect(result.code).toBe(ExitCode.ok)
    expect(result.stdout.split('\n')).toEqual([
      'lock "partner-api" in namespace `shop` released: it was held by "exclusive-1_1_x" (lease partner-api, resourceVersion 10 -> 99)',
      'lock "partner-api" in namespace `shop`: holder "sync-aaaa_1_x" released (holder record partner-api.h-aaaa, resourceVersion 31 -> 99)',
      'lock "partner-api" in namespace `shop`: holder "sync-bbbb_1_x" released (holder record partner-api.h-bbbb, resourceVersion 32 -> 99)',
      '',
    ])
    expect(api.writes).toEqual([
      `PUT ${LEASES}/partner-api`,
      `PUT ${LEASES}/partner-api.h-aaaa`,
      `PUT ${LEASES}/partner-api.h-bbbb`,
    ])
  })

  it('with --force reports a holder that changed meanwhile, after freeing the others', async () => {
    const api = await serve({ refused: 'partner-api.h-aaaa' })
    const result = await runLocks(['release', 'partner-api', '--force'], api.kubeconfig())
    expect(result).toEqual({
      code: ExitCode.failure,
      stdout:
        'lock "partner-api" in namespace `shop`: holder "sync-bbbb_1_x" released (holder record partner-api.h-bbbb, resourceVersion 32 -> 99)\n',
      stderr:
        "error: holder `sync-aaaa_1_x` of lock `partner-api` in namespace `shop` changed while being released (renewed, released or deleted by someone else) and was left as it was: run `locks get partner-api` to see the lock's state, then try again\n",
    })
  })

  it('without --force waits for each holder to expire; with --timeout 0 it refuses at once and writes nothing', async () => {
    const api = await serve()
    const result = await runLocks(['release', 'partner-api', '--timeout', '0'], api.kubeconfig())
    expect(result.code).toBe(ExitCode.failure)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe(
      'error: lock `partner-api` in namespace `shop` is still held by `sync-aaaa_1_x`, `sync-bbbb_1_x` after --timeout 0 s; they were left as they were: pass --holder ID to release one holder now, --force to release every holder now (a holder that still runs keeps running beside the next holder), or --timeout 22 or more to wait until they count as expired\n',
    )
    expect(api.writes).toEqual([])
  })

  it('refuses a holder record’s name, naming its lock', async () => {
    const api = await serve()
    const result = await runLocks(['release', 'partner-api.h-aaaa', '--force'], api.kubeconfig())
    expect(result.code).toBe(ExitCode.failure)
    expect(result.stderr).toContain(
      'is a holder record, one holder of shared lock or semaphore `partner-api`',
    )
    expect(api.writes).toEqual([])
  })
})
