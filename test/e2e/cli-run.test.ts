/**
 * `locks run` against the real API server: the command's exit code and environment, a lock that is
 * held by someone else, a command that outlives its lock, renewal, signal forwarding, and the failures
 * a user must be able to read.
 */
import { readFileSync } from 'node:fs'
import { beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { compareResourceVersions, createLocks, leaseNameFor } from '../../sdk/internal.ts'
import { CliProcess, locks } from './cli-helpers.ts'
import { adminKubeConfig, createNamespace, kubectl, serviceAccountKubeconfig } from './support.ts'

let namespace: string

beforeEach(async () => {
  namespace = await createNamespace('cli-run')
})

const node = process.execPath

async function holderOf(lockName: string): Promise<string | undefined> {
  const result = await kubectl(['get', 'lease', leaseNameFor(lockName), '-n', namespace, '-o', 'json'])
  expect(result.code, result.stderr).toBe(0)
  return (JSON.parse(result.stdout) as { spec: { holderIdentity?: string } }).spec.holderIdentity
}

/** A holder in this process, released and closed when the test ends. */
async function holdElsewhere(lockName: string, identity: string) {
  const client = createLocks({ kubeConfig: adminKubeConfig(), namespace, identity })
  onTestFinished(() => client.close())
  const lock = await client.acquire(lockName, { expires: 60, timeout: 0 })
  onTestFinished(() => lock.release())
  return lock
}

/** Whether a process still runs: a zombie waiting to be reaped does not. */
function runs(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

describe('locks run', () => {
  it("exits with the command's exit code, gives it the lock in its environment and releases the lock", async () => {
    const script =
      'const e = process.env; console.log(JSON.stringify([e.KUBE_LOCKS_NAME, e.KUBE_LOCKS_NAMESPACE, e.KUBE_LOCKS_LEASE, e.KUBE_LOCKS_FENCING_TOKEN])); process.exit(3)'
    const first = await locks(['run', 'report/eu 1', '-n', namespace, '--', node, '-e', script])
    expect(first.stderr).toBe('')
    expect(first.code).toBe(3)
    const [name, ns, lease, token] = JSON.parse(first.stdout) as string[]
    expect([name, ns, lease]).toEqual(['report/eu 1', namespace, leaseNameFor('report/eu 1')])
    expect(token).toMatch(/^[1-9][0-9]*$/)
    expect(await holderOf('report/eu 1')).toBeUndefined()

    const second = await locks(['run', 'report/eu 1', '-n', namespace, '--', node, '-e', script])
    expect(second.code).toBe(3)
    const nextToken = (JSON.parse(second.stdout) as string[])[3] as string
    expect(compareResourceVersions(nextToken, token as string)).toBeGreaterThan(0)
  })

  it('passes exit code 0 and death by signal through', async () => {
    expect((await locks(['run', 'ok', '-n', namespace, '--', 'true'])).code).toBe(0)
    const killed = await locks([
      'run',
      'ok',
      '-n',
      namespace,
      '--',
      node,
      '-e',
      "process.kill(process.pid, 'SIGKILL')",
    ])
    expect(killed.code).toBe(128 + 9)
  })

  it('exits 75 without running the command when the lock stays held', async () => {
    const held = await holdElsewhere('busy', 'other-service')
    const result = await locks([
      'run',
      'busy',
      '-n',
      namespace,
      '--timeout',
      '0',
      '--',
      node,
      '-e',
      "console.log('ran')",
    ])
    expect(result.code).toBe(75)
    expect(result.stdout).toBe('')
    expect(result.stderr).toMatch(
      /^error: lock `busy` in namespace `\S+` is held by `other-service_\S+` .*\n$/,
    )
    expect(result.stderr.split('\n')).toHaveLength(2)
    expect(await holderOf('busy')).toBe(held.holder)
  })

  it('stops a command that outlives its lock: SIGTERM, then SIGKILL after --kill-after; exits 76', async () => {
    const started = performance.now()
    // The shell and its child ignore SIGTERM, so only SIGKILL ends them.
    const cli = new CliProcess([
      'run',
      'short',
      '-n',
      namespace,
      '--expires',
      '2',
      '--kill-after',
      '0.5',
      '--',
      'sh',
      '-c',
      'trap "" TERM; sleep 60 & echo $!; wait; wait',
    ])
    await cli.waitForOutput('the command to start', (stdout) => stdout.includes('\n'))
    const sleeper = Number(cli.stdout.trim())
    const result = await cli.done
    const elapsed = performance.now() - started
    expect(result.code).toBe(76)
    expect(result.stderr).toMatch(
      /^error: lock `short` is lost: .*; stopping the command \(process group \d+\) with SIGTERM, then SIGKILL after 0.5 s\n$/,
    )
    // SIGTERM at expires minus the safety margin minus --kill-after, SIGKILL --kill-after later, at
    // 2 s − 0.2 s after the acquisition; far from the command's 60 s.
    expect(elapsed).toBeGreaterThan(1_800)
    expect(elapsed).toBeLessThan(20_000)
    expect(runs(sleeper)).toBe(false)
  })

  it('keeps the lock past --expires with --renew', async () => {
    const result = await locks([
      'run',
      'renewed',
      '-n',
      namespace,
      '--expires',
      '2',
      '--renew',
      '--',
      node,
      '-e',
      'setTimeout(() => process.exit(0), 3500)',
    ])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
  })

  it('forwards SIGTERM to the command and exits with its status', async () => {
    const script =
      "process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(5) }); console.log('ready'); setInterval(() => {}, 1000)"
    const cli = new CliProcess(['run', 'forwarded', '-n', namespace, '--', node, '-e', script])
    await cli.waitForOutput('the command to be ready', (stdout) => stdout.includes('ready'))
    cli.child.kill('SIGTERM')
    const result = await cli.done
    expect(result.code).toBe(5)
    expect(result.stdout).toBe('ready\ngot SIGTERM\n')
    expect(await holderOf('forwarded')).toBeUndefined()
  })

  it('exits 127 for a command that does not exist, and releases the lock', async () => {
    const result = await locks(['run', 'missing', '-n', namespace, '--', 'no-such-command-kube-locks'])
    expect(result.code).toBe(127)
    expect(result.stderr).toBe(
      'error: command `no-such-command-kube-locks` not found: check the name and PATH\n',
    )
    expect(await holderOf('missing')).toBeUndefined()
  })
})

describe('without rights', () => {
  it('says on one line that access is forbidden and what to ask for', async () => {
    const kubeconfig = await serviceAccountKubeconfig(namespace, 'nobody')
    const list = await locks(['list', '-n', namespace], { kubeconfig })
    expect(list.code).toBe(1)
    expect(list.stdout).toBe('')
    expect(list.stderr).toBe(
      `error: forbidden: cannot list leases.coordination.k8s.io in namespace \`${namespace}\` as \`system:serviceaccount:${namespace}:nobody\`: ask for a Role (or ClusterRole for -A) that grants \`list\` on leases in group coordination.k8s.io; check with \`kubectl auth can-i list leases.coordination.k8s.io -n ${namespace}\`\n`,
    )
    const run = await locks(['run', 'x', '-n', namespace, '--', 'true'], { kubeconfig })
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/^error: cannot \w+ leases.coordination.k8s.io in namespace `[^`]+`: .*\n$/)
  })
})
