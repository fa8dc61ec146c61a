/** `locks list` pages through large namespaces with `limit`/`continue`, against the real API server. */
import { beforeAll, describe, expect, it } from 'vitest'
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../../sdk/internal.ts'
import { locks } from './cli-helpers.ts'
import { adminKubeConfig, apiRequest, createNamespace } from './support.ts'

const MANAGED = 2_050
const UNMANAGED = 20
const BATCH = 50

let namespace: string

beforeAll(async () => {
  namespace = await createNamespace('cli-paging')
  const config = adminKubeConfig()
  const names = Array.from({ length: MANAGED + UNMANAGED }, (_, i) => i)
  for (let start = 0; start < names.length; start += BATCH) {
    await Promise.all(
      names.slice(start, start + BATCH).map(async (i) => {
        const managed = i < MANAGED
        const name = managed ? `lock-${String(i).padStart(4, '0')}` : `other-${i}`
        const labels = managed ? { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } : {}
        const body = {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, labels },
          spec: {},
        }
        const response = await apiRequest(
          'POST',
          `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
          body,
          config,
        )
        if (response.status !== 201)
          throw new Error(`creating ${name}: ${response.status} ${response.body.message}`)
      }),
    )
  }
}, 300_000)

describe('locks list over more than 2,000 leases', () => {
  it('fetches them in pages of --chunk-size and shows every managed lease once', async () => {
    const result = await locks(['list', '-n', namespace, '-o', 'name', '--chunk-size', '500', '--verbose'])
    expect(result.code).toBe(0)
    const names = result.stdout.trimEnd().split('\n')
    expect(names).toHaveLength(MANAGED)
    expect(new Set(names).size).toBe(MANAGED)
    expect(names[0]).toBe('lease.coordination.k8s.io/lock-0000')
    expect(names.at(-1)).toBe(`lease.coordination.k8s.io/lock-${MANAGED - 1}`)
    const requests = result.stderr.trimEnd().split('\n')
    expect(requests).toHaveLength(Math.ceil(MANAGED / 500))
    expect(requests.every((line) => line.startsWith('GET ') && line.includes('limit=500'))).toBe(true)
    expect(requests.slice(1).every((line) => line.includes('continue='))).toBe(true)
  })

  it('shows the same with the default page size and in one request with --chunk-size 0', async () => {
    const paged = await locks(['list', '-n', namespace, '-o', 'name'])
    const whole = await locks(['list', '-n', namespace, '-o', 'name', '--chunk-size', '0', '-v'])
    expect(whole.code).toBe(0)
    expect(whole.stderr.trimEnd().split('\n')).toHaveLength(1)
    expect(whole.stdout).toBe(paged.stdout)
    expect(paged.stdout.trimEnd().split('\n')).toHaveLength(MANAGED)
  })
})
