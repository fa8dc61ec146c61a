/**
 * `locks gc` against the real API server: the read-only plan, and `--apply`, which frees and deletes
 * what the plan shows and leaves everything else as it was.
 */
import type { KubeConfig } from '@kubernetes/client-node'
import { beforeEach, describe, expect, it } from 'vitest'
import {
  formatMicroTime,
  LOCK_NAME_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
} from '../../sdk/internal.ts'
import { locks } from './cli-helpers.ts'
import { adminKubeConfig, apiRequest, createNamespace } from './support.ts'

let namespace: string
let config: KubeConfig

interface Lease {
  metadata: { name: string; uid: string; resourceVersion: string; labels?: Record<string, string> }
  spec: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number }
}

const leases = () => `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`

async function createLease(
  name: string,
  spec: Record<string, unknown>,
  labels: Record<string, string> = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
): Promise<void> {
  const body = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, labels, annotations: { [LOCK_NAME_ANNOTATION]: name } },
    spec,
  }
  const response = await apiRequest('POST', leases(), body, config)
  expect(response.status, JSON.stringify(response.body)).toBe(201)
}

async function getLease(name: string): Promise<Lease | undefined> {
  const response = await apiRequest('GET', `${leases()}/${name}`, undefined, config)
  if (response.status === 404) return undefined
  expect(response.status).toBe(200)
  return response.body as unknown as Lease
}

const ago = (seconds: number) => formatMicroTime(Date.now() - seconds * 1000)

beforeEach(async () => {
  config = adminKubeConfig()
  namespace = await createNamespace('cli-gc')
  // Held, last renewed an hour ago for 20 s: expired.
  await createLease('expired', {
    holderIdentity: 'gone-1_1_x',
    leaseDurationSeconds: 20,
    acquireTime: ago(3600),
    renewTime: ago(3600),
  })
  // Free for ten minutes: past the retention (5 minutes).
  await createLease('idle', { leaseDurationSeconds: 20, renewTime: ago(600) })
  // Held and renewed a moment ago.
  await createLease('held', {
    holderIdentity: 'alive-1_1_x',
    leaseDurationSeconds: 3600,
    acquireTime: ago(5),
    renewTime: ago(5),
  })
  // Another component's lease, expired as well: never touched.
  await createLease(
    'foreign',
    { holderIdentity: 'other', leaseDurationSeconds: 20, renewTime: ago(3600) },
    {},
  )
})

describe('locks gc', () => {
  it('--dry-run shows the plan and changes nothing', async () => {
    const before = await Promise.all(['expired', 'idle', 'held', 'foreign'].map(getLease))
    const result = await locks(['gc', '--dry-run', '-n', namespace, '-o', 'json'])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const plan = JSON.parse(result.stdout) as {
      dryRun: boolean
      actions: { lease: string; action: string }[]
    }
    expect(plan.dryRun).toBe(true)
    expect(plan.actions.map((action) => [action.lease, action.action])).toEqual([
      ['expired', 'free'],
      ['idle', 'delete'],
    ])
    const after = await Promise.all(['expired', 'idle', 'held', 'foreign'].map(getLease))
    expect(after).toEqual(before)
  })

  it('--apply frees the expired lease, deletes the long-free one and leaves the rest', async () => {
    const held = await getLease('held')
    const foreign = await getLease('foreign')
    const expiredBefore = await getLease('expired')
    const result = await locks(['gc', '--apply', '-n', namespace])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const rows = result.stdout.trimEnd().split('\n')
    expect(rows[0]).toMatch(/^NAME\s+HOLDER\s+ACTION\s+REASON$/)
    expect(rows.slice(1).map((row) => row.split(/\s{2,}/).slice(0, 3))).toEqual([
      ['expired', 'gone-1_1_x', 'freed'],
      ['idle', '<none>', 'deleted'],
    ])
    const freed = await getLease('expired')
    expect(freed?.spec.holderIdentity).toBeUndefined()
    expect(freed?.metadata.uid).toBe(expiredBefore?.metadata.uid)
    expect(await getLease('idle')).toBeUndefined()
    expect(await getLease('held')).toEqual(held)
    expect(await getLease('foreign')).toEqual(foreign)
    // Level-based: a second run finds the freed lease not yet due for deletion, and nothing else.
    const again = await locks(['gc', '--apply', '-n', namespace, '-o', 'json'])
    expect(JSON.parse(again.stdout).actions).toEqual([])
  })
})
