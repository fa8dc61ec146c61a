/**
 * `locks release` against the real API server: refuses to take a valid lock from its holder unless
 * told to, frees a lock nobody renews once it has seen it unchanged for its duration plus grace, always
 * under a resourceVersion precondition, and says what it did.
 */
import type { KubeConfig } from '@kubernetes/client-node'
import { beforeEach, describe, expect, it } from 'vitest'
import {
  formatMicroTime,
  LOCK_NAME_ANNOTATION,
  leaseNameFor,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  SERVICE_ANNOTATION,
} from '../../sdk/internal.ts'
import { CliProcess, locks } from './cli-helpers.ts'
import { adminKubeConfig, apiRequest, createNamespace, waitFor } from './support.ts'

let namespace: string
let config: KubeConfig

interface Lease {
  metadata: { resourceVersion: string; annotations?: Record<string, string> }
  spec: { holderIdentity?: string; acquireTime?: string; renewTime?: string; leaseTransitions?: number }
}

const path = (name = '') =>
  `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases${name ? `/${name}` : ''}`

async function createHeld(
  lockName: string,
  holder: string,
  renewedSecondsAgo: number,
  leaseDurationSeconds = 30,
): Promise<Lease> {
  const renewTime = formatMicroTime(Date.now() - renewedSecondsAgo * 1000)
  const body = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: leaseNameFor(lockName),
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: { [LOCK_NAME_ANNOTATION]: lockName, [SERVICE_ANNOTATION]: 'billing' },
    },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds,
      acquireTime: renewTime,
      renewTime,
      leaseTransitions: 4,
    },
  }
  const response = await apiRequest('POST', path(), body, config)
  expect(response.status, JSON.stringify(response.body)).toBe(201)
  return response.body as unknown as Lease
}

async function read(lockName: string): Promise<Lease> {
  const response = await apiRequest('GET', path(leaseNameFor(lockName)), undefined, config)
  expect(response.status).toBe(200)
  return response.body as unknown as Lease
}

beforeEach(async () => {
  config = adminKubeConfig()
  namespace = await createNamespace('cli-release')
})

describe('locks release', () => {
  it('refuses while the holder has a valid lease, and changes nothing', async () => {
    const created = await createHeld('orders/EU', 'billing-0_7_ab', 0)
    const result = await locks(['release', 'orders/EU', '-n', namespace, '--timeout', '0'])
    expect(result.code).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe(
      `error: lock \`orders/EU\` in namespace \`${namespace}\` is still held by \`billing-0_7_ab\` after --timeout 0 s; nothing was changed: pass --force to release it anyway (a holder that still runs keeps running beside the next holder), --holder billing-0_7_ab to release it only while that holder has it, or --timeout 32 or more to wait until it counts as expired (32 s unchanged)\n`,
    )
    const other = await locks(['release', 'orders/EU', '-n', namespace, '--holder', 'someone-else'])
    expect(other.code).toBe(1)
    expect(other.stderr).toContain('is held by `billing-0_7_ab`, not `someone-else`; nothing was changed')
    expect((await read('orders/EU')).metadata.resourceVersion).toBe(created.metadata.resourceVersion)
  })

  it('frees the lock for its named holder, clearing the holder details and keeping the transitions', async () => {
    const created = await createHeld('orders/EU', 'billing-0_7_ab', 0)
    const result = await locks(['release', 'orders/EU', '-n', namespace, '--holder', 'billing-0_7_ab'])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const after = await read('orders/EU')
    expect(result.stdout).toBe(
      `lock "orders/EU" in namespace \`${namespace}\` released: it was held by "billing-0_7_ab" (lease ${leaseNameFor('orders/EU')}, resourceVersion ${created.metadata.resourceVersion} -> ${after.metadata.resourceVersion})\n`,
    )
    expect(after.spec.holderIdentity).toBeUndefined()
    expect(after.spec.acquireTime).toBeUndefined()
    expect(after.spec.leaseTransitions).toBe(4)
    expect(after.metadata.annotations).toEqual({ [LOCK_NAME_ANNOTATION]: 'orders/EU' })
  })

  it('takes a valid lock from its holder with --force', async () => {
    await createHeld('nightly', 'reports-1_9_cd', 0)
    const result = await locks(['release', 'nightly', '-n', namespace, '--force'])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(
      /^lock "nightly" in namespace `\S+` released: it was held by "reports-1_9_cd"/,
    )
    expect((await read('nightly')).spec.holderIdentity).toBeUndefined()
  })

  it('frees a lock nobody renews, without --force, once it has seen the lease unchanged for duration + grace', async () => {
    // renewTime two minutes ago says nothing: only what this machine sees counts.
    const created = await createHeld('stale', 'gone-1_1_ef', 120, 2)
    const started = performance.now()
    const result = await locks(['release', 'stale', '-n', namespace, '--grace', '0.5'])
    expect(performance.now() - started).toBeGreaterThanOrEqual(2_500)
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(
      new RegExp(
        `^lock \`stale\` in namespace \`${namespace}\` is held by \`gone-1_1_ef\`: waiting until this machine has seen its lease unchanged for 2.5 s \\(its duration 2 s \\+ grace 0.5 s\\), that is until \\S+ by this machine's clock; a renewal starts the wait again; --timeout ends it at \\S+\\n$`,
      ),
    )
    const after = await read('stale')
    expect(result.stdout).toBe(
      `lock "stale" in namespace \`${namespace}\` released: its lease was seen unchanged for 2.5 s (duration 2 s + grace 0.5 s) (lease stale, resourceVersion ${created.metadata.resourceVersion} -> ${after.metadata.resourceVersion})\n`,
    )
    expect(after.spec.holderIdentity).toBeUndefined()
  })

  it('waits for a holder that releases its lock meanwhile, and then has nothing to do', async () => {
    const created = await createHeld('handover', 'worker-1_1_ab', 0)
    const release = new CliProcess(['release', 'handover', '-n', namespace])
    await waitFor('release to wait', () => release.stderr.includes('waiting until'))
    const freed = await apiRequest(
      'PUT',
      path(leaseNameFor('handover')),
      { ...created, spec: { ...created.spec, holderIdentity: undefined, acquireTime: undefined } },
      config,
    )
    expect(freed.status).toBe(200)
    const result = await release.done
    expect(result.code).toBe(0)
    expect(result.stdout).toBe(
      `lock "handover" in namespace \`${namespace}\` is free: its holder released it while release waited; nothing was changed\n`,
    )
    expect((await read('handover')).metadata.resourceVersion).toBe(freed.body.metadata?.resourceVersion)
  })

  it('says when the lock is already free and when there is no such lock', async () => {
    await createHeld('twice', 'a_1_x', 0)
    expect((await locks(['release', 'twice', '-n', namespace, '--force'])).code).toBe(0)
    const again = await locks(['release', 'twice', '-n', namespace])
    expect(again).toMatchObject({
      code: 0,
      stdout: `lock "twice" in namespace \`${namespace}\` is already free\n`,
    })
    const missing = await locks(['release', 'never', '-n', namespace])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('lock `never` not found in namespace')
  })
})
