/**
 * The in-cluster path, end to end: a service account token minted by the API server, its CA and its
 * namespace in files as the kubelet projects them, KUBERNETES_SERVICE_HOST/_PORT in the environment.
 * A pod connects without loading the Kubernetes client library, and keeps working when its token
 * rotates.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLocks, LockPermissionError } from '../../sdk/internal.ts'
import { inClusterConnection } from '../../sdk/kube/connection.ts'
import { createStoreOverConnection } from '../../sdk/kube/store.ts'
import { adminKubeConfig, createNamespace, kubectl, waitFor } from './support.ts'

const WORKER = resolve(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'in-cluster-worker.ts')
const run = promisify(execFile)

let namespace: string
let root: string
let env: Record<string, string>

async function must(args: readonly string[]): Promise<string> {
  const result = await kubectl(args)
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr}`)
  return result.stdout.trim()
}

/** A token of the service account, invalid once `secret` is deleted. */
function token(secret: string): Promise<string> {
  return must([
    '-n',
    namespace,
    'create',
    'token',
    'locker',
    '--bound-object-kind',
    'Secret',
    '--bound-object-name',
    secret,
    '--duration',
    '1h',
  ])
}

/** Replaces a file the way the kubelet does: the new content appears at once, whole. */
function replaceFile(path: string, content: string): void {
  writeFileSync(`${path}.new`, content)
  renameSync(`${path}.new`, path)
}

beforeAll(async () => {
  namespace = await createNamespace('in-cluster')
  await must(['-n', namespace, 'create', 'serviceaccount', 'locker'])
  await must([
    '-n',
    namespace,
    'create',
    'role',
    'locker',
    '--verb=get,list,watch,create,update,delete',
    '--resource=leases.coordination.k8s.io',
  ])
  await must([
    '-n',
    namespace,
    'create',
    'rolebinding',
    'locker',
    '--role=locker',
    `--serviceaccount=${namespace}:locker`,
  ])
  for (const secret of ['first', 'second']) {
    await must(['-n', namespace, 'create', 'secret', 'generic', secret, '--from-literal=k=v'])
  }
  const cluster = adminKubeConfig().getCurrentCluster()
  if (!cluster?.caData) throw new Error('the admin kubeconfig carries no CA data')
  const server = new URL(cluster.server)
  root = mkdtempSync(join(tmpdir(), 'kube-locks-sa-'))
  writeFileSync(join(root, 'ca.crt'), Buffer.from(cluster.caData, 'base64'))
  writeFileSync(join(root, 'namespace'), namespace)
  writeFileSync(join(root, 'token'), await token('first'))
  env = { KUBERNETES_SERVICE_HOST: server.hostname, KUBERNETES_SERVICE_PORT: server.port }
})

afterAll(() => {
  if (root !== undefined) rmSync(root, { recursive: true, force: true })
})

describe('in a pod (the service account, no kubeconfig)', () => {
  it('takes a lock in its own namespace without loading the Kubernetes client library', async () => {
    const { stdout } = await run(process.execPath, [WORKER, root], {
      env: { ...process.env, ...env },
      timeout: 30_000,
    })
    const report = JSON.parse(stdout.trim()) as { namespace: string; token: string; resolved: string[] }
    expect(report.namespace).toBe(namespace)
    expect(report.token).toMatch(/^\d+$/)
    expect(report.resolved).toEqual([])
  })

  it('reads the token again as it rotates', async () => {
    let now = 0
    const connection = inClusterConnection({ root, env, now: () => now })
    const store = createStoreOverConnection(() => connection, connection.server)
    const locks = createLocks({ store, namespace })
    try {
      await (await locks.acquire('rotating', { timeout: 5 })).release()
      // The kubelet writes a new token; the old one stops working (its bound secret is gone).
      replaceFile(join(root, 'token'), await token('second'))
      await must(['-n', namespace, 'delete', 'secret', 'first'])
      await waitFor(
        'the old token to be refused',
        async () => {
          const error = await store.get(namespace, 'rotating').then(
            () => undefined,
            (e: unknown) => e,
          )
          return error instanceof LockPermissionError ? error : undefined
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      )
      // A minute later the token file is read again: the new token works.
      now += 60_000
      await (await locks.acquire('rotating', { timeout: 5 })).release()
    } finally {
      await locks.close()
      await store.close?.()
    }
  })
})
