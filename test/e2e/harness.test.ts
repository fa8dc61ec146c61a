/**
 * The local control plane itself: credentials for RBAC tests, restarts that keep data, and a
 * stop that leaves no process and no file behind.
 */
import { existsSync } from 'node:fs'
import { KubeConfig } from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ControlPlane } from '../cluster/index.ts'
import { apiRequest, kubectl } from './support.ts'

let plane: ControlPlane

beforeAll(async () => {
  plane = await ControlPlane.start({ fsync: true })
})

afterAll(async () => {
  await plane?.stop()
})

function config(path: string): KubeConfig {
  const kc = new KubeConfig()
  kc.loadFromFile(path)
  return kc
}

const leases = '/apis/coordination.k8s.io/v1/namespaces/default/leases'

describe('local control plane', () => {
  it('reports the Kubernetes version it was built as', async () => {
    const version = await kubectl(['version', '-o', 'json'], plane.kubeconfigPath)
    expect(version.code).toBe(0)
    expect(JSON.parse(version.stdout).serverVersion.gitVersion).toMatch(/^v1\.(3[5-9]|[4-9]\d)\.\d+$/)
  })

  it('mints user credentials that RBAC judges like any other user', async () => {
    const user = config(await plane.userKubeconfig('jane', ['auditors']))
    expect((await apiRequest('GET', leases, undefined, user)).status).toBe(403)
    const admin = config(plane.kubeconfigPath)
    const role = await apiRequest(
      'POST',
      '/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles',
      {
        metadata: { name: 'lease-reader' },
        rules: [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list'] }],
      },
      admin,
    )
    expect(role.status).toBe(201)
    const binding = await apiRequest(
      'POST',
      '/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings',
      {
        metadata: { name: 'auditors-read-leases' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'lease-reader' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'auditors' }],
      },
      admin,
    )
    expect(binding.status).toBe(201)
    expect((await apiRequest('GET', leases, undefined, user)).status).toBe(200)
  })

  it('mints service-account tokens', async () => {
    const account = config(await plane.serviceAccountKubeconfig('default', 'robot'))
    const denied = await apiRequest('GET', leases, undefined, account)
    expect(denied.status).toBe(403)
    expect(denied.body.message).toContain('system:serviceaccount:default:robot')
  })

  it('keeps acknowledged writes across a SIGKILL of etcd and of the API server', async () => {
    const admin = config(plane.kubeconfigPath)
    const created = await apiRequest('POST', leases, { metadata: { name: 'survivor' }, spec: {} }, admin)
    expect(created.status).toBe(201)
    await plane.restartEtcd('kill')
    await plane.restartApiserver('kill')
    const read = await apiRequest('GET', `${leases}/survivor`, undefined, admin)
    expect(read.status).toBe(200)
    expect(read.body.metadata?.uid).toBe(created.body.metadata?.uid)
  })

  it('stops every process it started and removes its files', async () => {
    const other = await ControlPlane.start({ binaries: plane.binaries })
    const pids = [other.etcd.pid, other.apiserver.pid]
    await other.stop()
    expect(existsSync(other.dir)).toBe(false)
    for (const pid of pids) {
      expect(pid).toBeTypeOf('number')
      expect(() => process.kill(pid as number, 0)).toThrow()
    }
  })
})
