import { afterEach, describe, expect, it } from 'vitest'
import {
  ControllerProcess,
  killControllers,
  namespacedArgs,
} from '../../controller/testing/controller-process.ts'
import { expectControllerLeading } from '../faults/controller-health.ts'
import { FaultRun, recordSummary, scaled } from '../faults/coordinator.ts'
import { createNamespace, kubeconfigPath } from './support.ts'

// The controller's reclaim and garbage collection race with renewals and acquisitions for
// a long time. Leases renew every 2/3 s and expire after 2 s; the controller, with no grace and no
// retention, frees any lease it sees unchanged for 2 s and deletes every free lease at once, and it is
// paused again and again for longer than a lease lasts. A renewed lease freed or deleted would make its
// holder's next renewal conflict: the holder would lose the lock.

let run: FaultRun | undefined

afterEach(async () => {
  await run?.close()
  run = undefined
  await killControllers()
})

describe('faults: controller races', () => {
  it(
    'reclaim and GC racing with renewals never free or delete a renewed lease',
    async () => {
      const namespace = await createNamespace('faults-ctl-race')
      const r = new FaultRun({
        kubeconfig: kubeconfigPath(),
        namespace,
        retryInterval: 0.2,
        requestTimeout: 5,
      })
      run = r
      const controller = new ControllerProcess(
        `faults-race-${namespace}`,
        namespacedArgs(
          kubeconfigPath(),
          namespace,
          '--grace',
          '0',
          '--retention',
          '0',
          '--log-level',
          'debug',
        ),
      )
      await expectControllerLeading(controller)
      const plan = {
        locks: ['r0', 'r1', 'r2', 'r3'],
        // Held across several renewals, longer than `expires`.
        acquire: { expires: 2, timeout: 120, renew: true },
        pauseMs: [200, 4_000] as const,
        rounds: 1_000_000,
      }
      const workers = await Promise.all(
        Array.from({ length: scaled(4, 8) }, (_, i) => r.spawn(`r${i}`, { contend: plan })),
      )
      const until = performance.now() + scaled(10_000, 300_000)
      let pauses = 0
      while (performance.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 1_000 + r.random() * 1_000))
        // A paused controller wakes up with a stale view: every lease looks unchanged for longer than
        // its duration. Its writes must fail their preconditions, not free renewed leases.
        controller.child.kill('SIGSTOP')
        r.fault()
        pauses++
        await new Promise((resolve) => setTimeout(resolve, 2_500 + r.random() * 1_500))
        controller.child.kill('SIGCONT')
      }
      await Promise.all(workers.map((w) => w.stop(120_000)))
      // Still (or again) the ready leader after being stopped again and again.
      await expectControllerLeading(controller)
      expect(pauses).toBeGreaterThan(0)
      const result = r.assertSafe('controller races: reclaim and GC against renewals')
      const losses = r.holds().filter((h) => h.endedBy !== 'AbortError')
      expect(losses, 'holds that ended otherwise than by release').toEqual([])
      expect(controller.logged('lock reclaimed: marked free')).toEqual([])
      // The race was on: the controller deleted leases between holds.
      expect(controller.logged('lease garbage-collected').length).toBeGreaterThan(0)
      expect(result.committed).toBeGreaterThan(4)
      recordSummary({
        test: 'controller races: controller writes refused by their preconditions',
        refused: controller.logged('lease changed before the write; nothing to do').length,
        collected: controller.logged('lease garbage-collected').length,
      })
    },
    scaled(200_000, 900_000),
  )
})
