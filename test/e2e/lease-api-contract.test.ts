/**
 * The behaviour of the Lease API that the lock algorithm is built on, pinned against the real
 * API server with raw JSON requests. If one of these changes in a new Kubernetes release, the
 * algorithm's safety argument (docs and DESIGN) must be revisited before upgrading.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import { apiRequest, createNamespace } from './support.ts'

let namespace: string
const leases = () => `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`

function lease(name: string, spec: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}) {
  return { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, ...metadata }, spec }
}

async function create(name: string, spec: Record<string, unknown> = { holderIdentity: 'a' }) {
  const response = await apiRequest('POST', leases(), lease(name, spec))
  expect(response.status).toBe(201)
  return response.body as { metadata: { resourceVersion: string; uid: string } }
}

beforeEach(async () => {
  namespace = await createNamespace('contract')
})

describe('Lease API contract', () => {
  it('answers a create of an existing name with 409 AlreadyExists', async () => {
    await create('taken')
    const again = await apiRequest('POST', leases(), lease('taken'))
    expect(again.status).toBe(409)
    expect(again.body.reason).toBe('AlreadyExists')
  })

  it('answers an update with a stale resourceVersion with 409 Conflict', async () => {
    const first = await create('stale')
    const { metadata } = first
    const update = (holder: string) =>
      apiRequest('PUT', `${leases()}/stale`, lease('stale', { holderIdentity: holder }, metadata))
    expect((await update('b')).status).toBe(200)
    const late = await update('c')
    expect(late.status).toBe(409)
    expect(late.body.reason).toBe('Conflict')
  })

  it('rejects an update without a resourceVersion with 422', async () => {
    const { metadata } = await create('unconditional')
    const response = await apiRequest(
      'PUT',
      `${leases()}/unconditional`,
      lease('unconditional', { holderIdentity: 'b' }, { uid: metadata.uid }),
    )
    expect(response.status).toBe(422)
    expect(response.body.reason).toBe('Invalid')
  })

  it('refuses to bring back a deleted lease through an update carrying its old uid', async () => {
    const { metadata } = await create('deleted')
    expect((await apiRequest('DELETE', `${leases()}/deleted`)).status).toBe(200)
    const late = await apiRequest(
      'PUT',
      `${leases()}/deleted`,
      lease('deleted', { holderIdentity: 'late' }, metadata),
    )
    // Recorded answer of kube-apiserver 1.36: 409 Conflict, "Precondition failed: UID in precondition".
    expect(late.status).toBe(409)
    expect(late.body.reason).toBe('Conflict')
    expect(late.body.message).toMatch(/UID in precondition/)
    expect((await apiRequest('GET', `${leases()}/deleted`)).status).toBe(404)
  })

  it('creates a lease through an update without a uid when the name does not exist', async () => {
    // Why every update carries the uid: without it, a PUT to a deleted lease re-creates it.
    const { metadata } = await create('recreated')
    expect((await apiRequest('DELETE', `${leases()}/recreated`)).status).toBe(200)
    const late = await apiRequest(
      'PUT',
      `${leases()}/recreated`,
      lease('recreated', { holderIdentity: 'late' }, { resourceVersion: metadata.resourceVersion }),
    )
    expect(late.status).toBe(201)
  })

  it('answers a delete with stale uid or resourceVersion preconditions with 409', async () => {
    const { metadata } = await create('guarded')
    const renewed = await apiRequest(
      'PUT',
      `${leases()}/guarded`,
      lease('guarded', { holderIdentity: 'b' }, metadata),
    )
    expect(renewed.status).toBe(200)
    const stale = await apiRequest('DELETE', `${leases()}/guarded`, {
      preconditions: { uid: metadata.uid, resourceVersion: metadata.resourceVersion },
    })
    expect(stale.status).toBe(409)
    expect(stale.body.reason).toBe('Conflict')
    const wrongUid = await apiRequest('DELETE', `${leases()}/guarded`, {
      preconditions: { uid: '00000000-0000-0000-0000-000000000000' },
    })
    expect(wrongUid.status).toBe(409)
    const current = await apiRequest('DELETE', `${leases()}/guarded`, {
      preconditions: { uid: metadata.uid, resourceVersion: renewed.body.metadata?.resourceVersion },
    })
    expect(current.status).toBe(200)
  })

  it('takes MicroTime with six fractional digits and rejects three with 400', async () => {
    const six = await apiRequest(
      'POST',
      leases(),
      lease('micro', { acquireTime: '2026-01-02T03:04:05.123456Z' }),
    )
    expect(six.status).toBe(201)
    expect((six.body.spec as { acquireTime: string }).acquireTime).toBe('2026-01-02T03:04:05.123456Z')
    const three = await apiRequest(
      'POST',
      leases(),
      lease('milli', { acquireTime: new Date(0).toISOString() }),
    )
    expect(three.status).toBe(400)
  })

  it('gives a deleted and re-created lease a strictly greater resourceVersion', async () => {
    const versions: bigint[] = []
    for (let round = 0; round < 3; round++) {
      const { metadata } = await create('reborn')
      versions.push(BigInt(metadata.resourceVersion))
      const updated = await apiRequest(
        'PUT',
        `${leases()}/reborn`,
        lease('reborn', { holderIdentity: 'b' }, metadata),
      )
      versions.push(BigInt(updated.body.metadata?.resourceVersion ?? '0'))
      expect((await apiRequest('DELETE', `${leases()}/reborn`)).status).toBe(200)
    }
    for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1] as bigint)
  })
})
