// An application whose service account is bound to the chart's client role takes real locks with
// the SDK, with that account's own credentials, in its namespace and not in another.
import { randomBytes } from 'node:crypto'
import { CoordinationV1Api, KubeConfig } from '@kubernetes/client-node'
import { describe, expect, it, onTestFinished } from 'vitest'
import { CHART_DIR } from '../../hack/render-manifests.ts'
import {
  createLocks,
  LOCK_NAME_ANNOTATION,
  LockError,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  NODE_ANNOTATION,
  POD_ANNOTATION,
  SERVICE_ANNOTATION,
} from '../../sdk/internal.ts'
import {
  adminKubeConfig,
  type CommandResult,
  createNamespace,
  helm,
  kubectl,
  serviceAccountKubeconfig,
} from './support.ts'

function ok(result: CommandResult, what: string): string {
  expect(result.code, `${what}:\n${result.stdout}\n${result.stderr}`).toBe(0)
  return result.stdout
}

describe('the SDK with client-role credentials', () => {
  it('takes, holds and releases a lock in its own namespace, and is refused in another', async () => {
    const [system, app, neighbour] = await Promise.all([
      createNamespace('install'),
      createNamespace('app'),
      createNamespace('neighbour'),
    ])
    const release = `kl-${randomBytes(3).toString('hex')}`
    ok(await helm(['install', release, CHART_DIR, '--namespace', system]), 'helm install')
    onTestFinished(async () => {
      ok(await helm(['uninstall', release, '--namespace', system]), 'helm uninstall')
    })
    const kubeconfigPath = await serviceAccountKubeconfig(app, 'checkout')
    ok(
      await kubectl([
        'create',
        'rolebinding',
        'checkout-locks',
        '-n',
        app,
        `--clusterrole=${release}-kube-locks-client`,
        `--serviceaccount=${app}:checkout`,
      ]),
      'create rolebinding',
    )
    const kubeConfig = new KubeConfig()
    kubeConfig.loadFromFile(kubeconfigPath)
    // As a pod with the downward-API variables would have it.
    const identity = { service: 'checkout', pod: 'checkout-6f7d9-x2x9k', node: 'node-a' }
    const locks = createLocks({ kubeConfig, namespace: app, ...identity })
    const rival = createLocks({
      kubeConfig,
      namespace: app,
      service: 'checkout',
      pod: 'checkout-6f7d9-q8m4z',
    })
    const elsewhere = createLocks({ kubeConfig, namespace: neighbour, service: 'checkout' })
    onTestFinished(async () => {
      await Promise.all([locks.close(), rival.close(), elsewhere.close()])
    })

    const lock = await locks.acquire('orders/nightly-export', { timeout: 5 })
    expect(lock.namespace).toBe(app)
    expect(lock.signal.aborted).toBe(false)

    // The lease, as an administrator sees it, names the lock and its holder.
    const leases = adminKubeConfig().makeApiClient(CoordinationV1Api)
    const lease = await leases.readNamespacedLease({ name: lock.leaseName, namespace: app })
    expect(lease.spec?.holderIdentity).toBe(lock.holder)
    expect(lease.metadata?.labels?.[MANAGED_BY_LABEL]).toBe(MANAGED_BY_VALUE)
    expect(lease.metadata?.annotations).toMatchObject({
      [LOCK_NAME_ANNOTATION]: 'orders/nightly-export',
      [SERVICE_ANNOTATION]: identity.service,
      [POD_ANNOTATION]: identity.pod,
      [NODE_ANNOTATION]: identity.node,
    })

    // Held: another client with the same rights cannot take it.
    await expect(rival.acquire('orders/nightly-export', { timeout: 0 })).rejects.toBeInstanceOf(LockError)

    await lock.release()
    expect(lock.signal.aborted).toBe(true)
    const next = await rival.acquire('orders/nightly-export', { timeout: 5 })
    expect(BigInt(next.fencingToken)).toBeGreaterThan(BigInt(lock.fencingToken))
    await next.release()

    // The binding is per namespace: the same account has no locks next door.
    const refused = elsewhere.acquire('orders/nightly-export', { timeout: 0 })
    await expect(refused).rejects.toBeInstanceOf(LockError)
    await expect(refused).rejects.toMatchObject({ code: 'PERMISSION_DENIED' })
  })
})
