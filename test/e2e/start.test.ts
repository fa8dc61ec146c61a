import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type Child, startChild } from '../../dev/child-process.ts'
import { createKubernetesLeaseStore } from '../../sdk/internal.ts'
import { adminKubeConfig, createNamespace, kubeconfigPath, waitFor } from './support.ts'

// `npm start` against a configured cluster, stopped as a terminal stops it: one SIGINT to the whole
// foreground process group.

const ROOT = join(import.meta.dirname, '..', '..')
const ELECTION = 'kube-locks-controller'
const store = createKubernetesLeaseStore(adminKubeConfig())
let start: Child | undefined

afterEach(async () => {
  if (start?.alive && start.pid !== undefined) process.kill(-start.pid, 'SIGKILL')
  await start?.exited
})

describe('npm start', () => {
  it('stops on one Ctrl-C with a graceful shutdown that releases the leadership lease', async () => {
    const ns = await createNamespace('start')
    let stdout = ''
    start = startChild(
      'npm start',
      process.execPath,
      [
        join(ROOT, 'hack/start.ts'),
        '--namespaces',
        ns,
        '--listen',
        '127.0.0.1:0',
        '--leader-election-namespace',
        ns,
      ],
      // A process group of its own, as a shell gives a foreground job.
      { env: { ...process.env, KUBECONFIG: kubeconfigPath() }, detached: true },
    )
    start.process.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    await waitFor(
      'the controller to become the leader',
      async () => (await store.get(ns, ELECTION))?.holderIdentity,
      { timeoutMs: 30_000 },
    )
    await waitFor('the controller to list the leases', () => stdout.includes('listed leases') || undefined, {
      timeoutMs: 30_000,
    })

    // The terminal's Ctrl-C: SIGINT to every process of the group.
    process.kill(-(start.pid as number), 'SIGINT')
    const exit = await waitFor('npm start to exit', () => start?.exit, { timeoutMs: 30_000 })

    expect(exit).toEqual({ code: 0, signal: null })
    expect(stdout).toContain('released leadership')
    expect(stdout).not.toContain('second signal')
    expect(start.stderr).toContain('SIGINT: stopping')
    const lease = await store.get(ns, ELECTION)
    expect(lease?.holderIdentity).toBeUndefined()
  }, 90_000)
})
