import { afterEach, describe, expect, it } from 'vitest'
import {
  ControllerProcess,
  killControllers,
  namespacedArgs,
} from '../../controller/testing/controller-process.ts'
import { expectControllerLeading } from '../faults/controller-health.ts'
import { FaultRun, recordSummary, scaled } from '../faults/coordinator.ts'
import { createNamespace, kubeconfigPath } from './support.ts'

// Workers whose clocks disagree. The SDK's clock is injected in each worker process: the
// wall clock (which only fills renewTime/acquireTime) off by ±5 minutes, and the monotonic clock running
// up to 2 % fast or slow — within the safety margin of 10 % of `expires`, the documented tolerance.

let run: FaultRun | undefined

afterEach(async () => {
  await run?.close()
  run = undefined
  await killControllers()
})

const MINUTES_5 = 5 * 60_000

describe('faults: clocks', () => {
  it(
    'wall clocks off by ±5 minutes and clock rates off by 2 %, with the controller running: safety holds',
    async () => {
      const namespace = await createNamespace('faults-clock')
      const r = new FaultRun({
        kubeconfig: kubeconfigPath(),
        namespace,
        retryInterval: 0.2,
        requestTimeout: 5,
      })
      run = r
      const controller = new ControllerProcess(
        `faults-clock-${namespace}`,
        namespacedArgs(kubeconfigPath(), namespace, '--grace', '1', '--retention', '5'),
      )
      await expectControllerLeading(controller)
      const plan = {
        locks: ['tick', 'tock'],
        // Holds longer than a round trip: a waiter that trusted a renewTime 5 minutes in the past would
        // take the lock over while it is held.
        acquire: { expires: 3, timeout: 120 },
        pauseMs: [100, 600] as const,
        rounds: scaled(2, 25),
      }
      const skews = [
        { wallSkewMs: MINUTES_5 },
        { wallSkewMs: -MINUTES_5 },
        { wallSkewMs: MINUTES_5, clockRate: 0.98 },
        { wallSkewMs: -MINUTES_5, clockRate: 1.02 },
        { wallSkewMs: -MINUTES_5, clockRate: 0.98 },
        { wallSkewMs: MINUTES_5, clockRate: 1.02 },
        {},
        {},
      ]
      const workers = await Promise.all(
        skews.map((skew, i) => r.spawn(`skew${i}`, { ...skew, contend: plan })),
      )
      r.fault(skews.length - 2)
      await Promise.all(workers.map((w) => w.next('done', () => true, scaled(150_000, 900_000))))
      await expectControllerLeading(controller)
      const result = r.assertSafe('clocks: skewed wall clocks and rates')
      expect(result.holds).toBe(8 * plan.rounds)
      // No hold was lost to the controller: it judges expiry on its own clock, whatever renewTime says.
      expect(controller.logged('lock reclaimed: marked free')).toEqual([])
    },
    scaled(200_000, 1_000_000),
  )

  it('a holder whose clock runs at a quarter speed is beyond the tolerance: the checker sees the overlap', async () => {
    // The end-to-end counterpart of the checker's unit tests: a real violation, made on purpose by a
    // clock-rate difference far beyond the safety margin, must fail the run.
    const namespace = await createNamespace('faults-slow-clock')
    const r = new FaultRun({ kubeconfig: kubeconfigPath(), namespace, retryInterval: 0.2, requestTimeout: 5 })
    run = r
    r.resources(['slow'])
    const [slow, waiter] = await Promise.all([r.spawn('slow', { clockRate: 0.25 }), r.spawn('waiter')])
    const options = { expires: 2, timeout: 60 }
    slow.send({ type: 'acquire', lock: 'slow', options })
    await slow.next('acquired')
    slow.send({ type: 'read', lock: 'slow' })
    await slow.next('read')
    waiter.send({ type: 'acquire', lock: 'slow', options })
    await waiter.next('acquired', () => true, 30_000)
    waiter.send({ type: 'read', lock: 'slow' })
    await waiter.next('read')
    waiter.send({ type: 'commit', lock: 'slow' })
    await waiter.next('write')
    // The slow holder still believes its lock valid (its signal fires at 7.2 s of real time).
    slow.send({ type: 'commit', lock: 'slow' })
    const write = await slow.next('write')
    expect(write.report).toMatchObject({ outcome: 'fenced', late: false })
    // Its hold lasts until its signal fires, well after the waiter took over.
    await slow.next('aborted', () => true, 30_000)
    const kinds = new Set(r.check().violations.map((v) => v.kind))
    expect(kinds).toEqual(new Set(['overlap', 'valid-write-fenced']))
    recordSummary({
      test: 'clocks: planted violation (clock at a quarter speed)',
      plantedViolations: kinds.size,
    })
  })

  it('an SDK whose signal fires after sendTime + expires − margin is caught: late-signal', async () => {
    // A planted bug: the SDK runs with a safety margin of 0 while the options ask for the default
    // (0.3 s at `expires` 3), so its signal fires 300 ms after the documented bound. No one else takes
    // the lock: only the bound itself can show it.
    const namespace = await createNamespace('faults-late-signal')
    const r = new FaultRun({ kubeconfig: kubeconfigPath(), namespace, retryInterval: 0.2, requestTimeout: 5 })
    run = r
    const holder = await r.spawn('late', { plantSdkSafetyMargin: 0 })
    holder.send({ type: 'acquire', lock: 'late', options: { expires: 3, timeout: 30 } })
    await holder.next('acquired')
    await holder.next('probe', () => true, 30_000)
    await holder.next('aborted', () => true, 30_000)
    const violations = r.check().violations
    expect(violations.map((v) => v.kind)).toEqual(['late-signal'])
    expect(violations[0]).toMatchObject({ never: false })
    const lateMs = violations[0]?.kind === 'late-signal' ? violations[0].lateMs : 0
    expect(lateMs).toBeGreaterThan(250)
    recordSummary({ test: 'clocks: planted violation (signal 300 ms late)', plantedViolations: 1 })
  })
})
