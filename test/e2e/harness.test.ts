/**
 * The local control plane itself: credentials for RBAC tests, restarts that keep data, and a
 * stop that leaves no process and no file behind; and the highly available one: an etcd cluster
 * of three members, two API servers, leader election and cut-off members.
 */
import { existsSync } from 'node:fs'
import { KubeConfig } from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ControlPlane, HaControlPlane, VERSIONS } from '../../dev/cluster/index.ts'
import { apiRequest, kubectl, runCommand, waitFor } from './support.ts'

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
    // The release KUBE_LOCKS_K8S_VERSION selects (the default unless set), as its binaries were stamped.
    expect(JSON.parse(version.stdout).serverVersion.gitVersion).toBe(VERSIONS.kubernetes)
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

describe('highly available control plane', () => {
  let ha: HaControlPlane | undefined

  beforeAll(async () => {
    ha = await HaControlPlane.start({ binaries: plane.binaries })
  }, 180_000)

  afterAll(async () => {
    await ha?.stop()
  })

  function started(): HaControlPlane {
    if (!ha) throw new Error('no HA control plane')
    return ha
  }

  const haLeases = (ns: string) => `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`

  it('runs three etcd members in one cluster and two API servers behind the front', async () => {
    const cp = started()
    const members = await cp.etcdMemberList()
    expect(members.map((m) => m.name).sort()).toEqual(['m0', 'm1', 'm2'])
    // Every member agrees on one leader among them.
    const leader = await cp.etcdLeader()
    const statuses = await Promise.all(cp.etcd.map((m) => cp.etcdStatus(m.index)))
    expect(new Set(statuses.map((s) => s.leaderId))).toEqual(new Set([statuses[leader]?.memberId]))
    expect(new Set(statuses.map((s) => s.memberId))).toEqual(new Set(members.map((m) => m.id)))
    for (const api of cp.apiServers) {
      expect((await cp.request('GET', '/readyz', undefined, api.index)).status).toBe(200)
      const version = await kubectl(['version', '-o', 'json'], api.kubeconfigPath)
      expect(version.code).toBe(0)
    }
    // The front spreads new connections over both servers: each kubectl run opens its own.
    const before = [...cp.front.connections]
    for (let i = 0; i < 4; i++)
      expect((await kubectl(['get', 'ns', 'default'], cp.kubeconfigPath)).code).toBe(0)
    for (const [i, n] of cp.front.connections.entries()) expect(n).toBeGreaterThan(before[i] ?? 0)
  })

  it('reads through one API server what was written through the other', async () => {
    const cp = started()
    const created = await cp.request(
      'POST',
      haLeases('default'),
      { metadata: { name: 'across' }, spec: { holderIdentity: 'a' } },
      0,
    )
    expect(created.status).toBe(201)
    const written = JSON.parse(created.body) as { metadata: { uid: string; resourceVersion: string } }
    const read = await cp.request('GET', `${haLeases('default')}/across`, undefined, 1)
    expect(read.status).toBe(200)
    const seen = JSON.parse(read.body) as { metadata: { uid: string; resourceVersion: string } }
    expect(seen.metadata).toMatchObject({
      uid: written.metadata.uid,
      resourceVersion: written.metadata.resourceVersion,
    })
  })

  it('elects a new etcd leader when the leader is killed, and the old one rejoins', async () => {
    const cp = started()
    const leader = await cp.etcdLeader()
    const old = await cp.etcdStatus(leader)
    await cp.etcd[leader]?.process.kill()
    const next = await cp.etcdLeader(30_000)
    expect(next).not.toBe(leader)
    const now = await cp.etcdStatus(next)
    expect(BigInt(now.raftTerm)).toBeGreaterThan(BigInt(old.raftTerm))
    // Both API servers still write, with one member down.
    for (const api of cp.apiServers) {
      const res = await cp.request(
        'POST',
        haLeases('default'),
        { metadata: { name: `after-kill-${api.index}` }, spec: {} },
        api.index,
      )
      expect(res.status).toBe(201)
    }
    await cp.startEtcdMember(leader)
    await waitFor('the restarted member to follow the new leader', async () => {
      const status = await cp.etcdStatus(leader)
      return status.leaderId !== '0' && status.leaderId !== old.memberId
    })
  })

  it('cuts a member off from its peers and heals it', async () => {
    const cp = started()
    const leader = await cp.etcdLeader()
    const follower = cp.etcd.findIndex((m) => m.index !== leader)
    cp.isolateEtcdMember(follower)
    try {
      // Cut off, it loses its leader, while the others keep theirs and the cluster keeps writing.
      await waitFor(
        'the cut-off member to lose its leader',
        async () => {
          const res = await fetch(`${cp.etcd[follower]?.clientUrl}/health`)
          return (await res.text()).includes('"false"')
        },
        { timeoutMs: 30_000 },
      )
      expect(await cp.etcdLeader()).toBe(leader)
      const res = await cp.request('POST', haLeases('default'), {
        metadata: { name: 'during-cut' },
        spec: {},
      })
      expect(res.status).toBe(201)
      // Every peer connection was told apart by the process that opened it.
      expect(cp.etcd.map((m) => m.link.unclassified)).toEqual([0, 0, 0])
    } finally {
      cp.healEtcdMember(follower)
    }
    await waitFor(
      'the healed member to have a leader again',
      async () => {
        const health = await fetch(`${cp.etcd[follower]?.clientUrl}/health`)
        return (await health.text()).includes('"true"')
      },
      { timeoutMs: 30_000 },
    )
  })

  it('pauses a member and continues it', { timeout: 120_000 }, async () => {
    const cp = started()
    const leader = await cp.etcdLeader()
    const follower = cp.etcd.findIndex((m) => m.index !== leader)
    await cp.pauseEtcdMember(follower)
    try {
      // Stopped, it answers nothing; the other two keep their leader and the cluster keeps writing.
      await expect(cp.etcdStatus(follower)).rejects.toThrow(/timed out/)
      expect(await cp.etcdLeader()).toBe(leader)
      // An API server whose etcd client was talking to the stopped member answers once that client
      // gives up on it and moves on: a write may time out first, and then goes through.
      let attempt = 0
      const created = await waitFor(
        'a write through the API servers during the pause',
        async () => {
          attempt++
          const res = await cp
            .request('POST', haLeases('default'), { metadata: { name: `during-pause-${attempt}` }, spec: {} })
            .catch(() => undefined)
          return res?.status === 201 ? res : undefined
        },
        { timeoutMs: 45_000, intervalMs: 200 },
      )
      expect(created.status).toBe(201)
    } finally {
      await cp.resumeEtcdMember(follower)
    }
    await waitFor(
      'the continued member to answer',
      async () => (await cp.etcdStatus(follower)).leaderId !== '0',
      {
        timeoutMs: 30_000,
      },
    )
  })

  it('stops every process it started and removes its files', async () => {
    const cp = started()
    const pids = cp.pids()
    expect(pids).toHaveLength(5)
    const listed = await runCommand('ps', ['-eo', 'pid=,args='])
    expect(listed.stdout.split('\n').filter((line) => line.includes(cp.dir))).toHaveLength(5)
    await cp.stop()
    expect(existsSync(cp.dir)).toBe(false)
    const after = await runCommand('ps', ['-eo', 'pid=,args='])
    expect(after.stdout.split('\n').filter((line) => line.includes(cp.dir))).toEqual([])
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow()
  })
})
