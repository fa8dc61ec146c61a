import { afterEach, describe, expect, it } from 'vitest'
import { RECLAIM_DEFAULTS } from '../sdk/internal.ts'
import { ExitCode } from './exit-codes.ts'
import { LeaseServer, runLocks } from './testing/lease-server.ts'
import { lockJson } from './testing/leases.ts'

// Three graces, three names: `release --expiry-grace`, `gc --reclaim-grace`, `run --kill-after`; the old
// `--grace` of each still works, hidden.

let server: LeaseServer | undefined

afterEach(async () => {
  await server?.close()
  server = undefined
})

/** Held, last renewed at 11:59:55 for 20 s. */
const lease = lockJson('orders')
/** 21 s past the renewal: expired by 1 s. */
const AT = Date.parse('2030-01-01T12:00:16Z')

async function gcNames(args: string[]) {
  server = await new LeaseServer([lease]).start()
  return await runLocks(['gc', '--dry-run', '-o', 'name', ...args], server.kubeconfig(), { now: AT })
}

describe('gc --reclaim-grace', () => {
  it("is the controller's grace by default", async () => {
    expect(RECLAIM_DEFAULTS.grace).toBeGreaterThan(1)
    expect(await gcNames([])).toEqual({ code: ExitCode.ok, stdout: '', stderr: '' })
  })

  it('judges by the grace given', async () => {
    const result = await gcNames(['--reclaim-grace', '0.5'])
    expect(result).toEqual({ code: ExitCode.ok, stdout: 'lease.coordination.k8s.io/orders\n', stderr: '' })
  })

  it('still takes --grace, and warns that it is deprecated', async () => {
    const result = await gcNames(['--grace', '0.5'])
    expect(result).toEqual({
      code: ExitCode.ok,
      stdout: 'lease.coordination.k8s.io/orders\n',
      stderr:
        'warning: --grace is deprecated and will be removed: use --reclaim-grace, which means the same\n',
    })
  })

  it('refuses both names at once', async () => {
    const result = await gcNames(['--grace', '1', '--reclaim-grace', '1'])
    expect(result.code).toBe(ExitCode.usage)
    expect(result.stderr).toBe(
      'error: --grace is the old name of --reclaim-grace: give only --reclaim-grace\n',
    )
  })
})

describe('release --expiry-grace', () => {
  it('refuses both names at once, before any request', async () => {
    server = await new LeaseServer([lease]).start()
    const result = await runLocks(
      ['release', 'orders', '--grace', '1', '--expiry-grace', '1'],
      server.kubeconfig(),
    )
    expect(result.code).toBe(ExitCode.usage)
    expect(result.stderr).toBe('error: --grace is the old name of --expiry-grace: give only --expiry-grace\n')
    expect(server.requests).toEqual([])
  })
})

describe.each([
  ['release', '--expiry-grace'],
  ['gc', '--reclaim-grace'],
  ['run', '--kill-after'],
])('%s', (command, name) => {
  it(`shows ${name} in help and completion, and hides --grace`, async () => {
    server = await new LeaseServer([]).start()
    const help = await runLocks([command, '--help'], server.kubeconfig())
    expect(help.stdout).toContain(`${name} <seconds>`)
    expect(help.stdout).not.toContain('--grace')
    const completion = await runLocks(['completion', 'bash'], server.kubeconfig())
    const line = completion.stdout.split('\n').find((text) => text.includes(`${command}) flags=`))
    expect(line).toContain(name)
    expect(line).not.toContain('--grace')
  })
})
