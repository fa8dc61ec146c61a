/**
 * The stall bound rests on the server ending every watch after `timeoutSeconds`: a quiet watch must end
 * normally (the store's `watch` resolves) well within `watchTimeoutSeconds + STALL_MARGIN_SECONDS`, or
 * a healthy quiet watch would be taken for a stalled one.
 */
import { describe, expect, it } from 'vitest'
import { createKubernetesLeaseStore, MANAGED_BY_SELECTOR } from '../../sdk/internal.ts'
import { STALL_MARGIN_SECONDS } from '../../sdk/watch-hub.ts'
import { adminKubeConfig, createNamespace } from './support.ts'

describe('watch timeout', () => {
  it('the server ends a quiet watch after timeoutSeconds, within the stall bound', async () => {
    const namespace = await createNamespace('watch-timeout')
    const store = createKubernetesLeaseStore(adminKubeConfig(), { watchTimeoutSeconds: 2 })
    try {
      const list = await store.list(namespace, { labelSelector: MANAGED_BY_SELECTOR })
      const started = performance.now()
      const bound = (2 + STALL_MARGIN_SECONDS) * 1000
      await store.watch(
        namespace,
        {
          resourceVersion: list.resourceVersion,
          labelSelector: MANAGED_BY_SELECTOR,
          // Past the bound the watch would count as stalled: fail rather than wait on.
          signal: AbortSignal.timeout(bound + 5000),
        },
        () => {},
      )
      const lasted = performance.now() - started
      expect(lasted).toBeGreaterThanOrEqual(1500)
      expect(lasted).toBeLessThan(bound)
    } finally {
      await store.close?.()
    }
  })
})
