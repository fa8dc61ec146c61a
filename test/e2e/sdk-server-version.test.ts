// The SDK's version check against the real server: one warning through the logger before
// Kubernetes 1.35 (fencing tokens rest on etcd revisions there), none from 1.35 on.
// `npm run test:compat` runs this against the oldest and the newest supported version.
import { VersionApi } from '@kubernetes/client-node'
import { describe, expect, inject, it } from 'vitest'
import { VERSIONS } from '../../dev/cluster/index.ts'
import { createKubernetesLeaseStore, createLocks, type LeaseStore } from '../../sdk/internal.ts'
import { adminKubeConfig, createNamespace, waitFor } from './support.ts'

async function serverVersion() {
  return adminKubeConfig().makeApiClient(VersionApi).getCode()
}

describe('the server version check', () => {
  it('runs against the release KUBE_LOCKS_K8S_VERSION selects', async (context) => {
    if (!inject('localControlPlane'))
      context.skip('E2E_KUBECONFIG names a cluster whose version the harness does not choose')
    expect((await serverVersion()).gitVersion).toBe(VERSIONS.kubernetes)
  })

  it('warns once per client through its logger on a server before 1.35, and never after', async () => {
    const info = await serverVersion()
    const older = Number(info.major) === 1 && Number.parseInt(info.minor, 10) < 35
    const namespace = await createNamespace('version')
    const inner = createKubernetesLeaseStore(adminKubeConfig())
    const answers: Promise<unknown>[] = []
    const store: LeaseStore = {
      ...inner,
      serverVersion: (options) => {
        const answer = inner.serverVersion?.(options) ?? Promise.reject(new Error('no serverVersion'))
        answers.push(answer)
        return answer
      },
    }
    const warnings: string[] = []
    const locks = createLocks({ store, namespace, logger: { warn: (message) => warnings.push(message) } })
    try {
      await locks.withLock('first', () => {})
      await locks.withLock('second', () => {})
      // The check ran to its answer (a check cut short by close() would make "no warning" vacuous).
      expect(answers).toHaveLength(1)
      await expect(answers[0]).resolves.toMatchObject({ gitVersion: info.gitVersion })
      if (older) await waitFor('the version warning', () => warnings.length > 0)
    } finally {
      await locks.close()
      await inner.close?.()
    }
    expect(warnings).toEqual(
      older ? [expect.stringContaining(`runs Kubernetes ${info.gitVersion}, older than 1.35`)] : [],
    )
  })
})
