import { afterEach, describe, expect, it } from 'vitest'
import { FaultRun, scaled, type Worker } from '../faults/coordinator.ts'
import { createNamespace, kubeconfigPath } from './support.ts'

// Deliverable 1: many processes contend on one lock and on a set of locks; every hold and every write is
// judged by the checker. The second test adds crashes and pauses of random workers while they hold.

let run: FaultRun | undefined

afterEach(async () => {
  await run?.close()
  run = undefined
})

async function newRun(prefix: string): Promise<FaultRun> {
  const namespace = await createNamespace(prefix)
  run = new FaultRun({ kubeconfig: kubeconfigPath(), namespace, retryInterval: 0.2, requestTimeout: 5 })
  return run
}

describe('faults: contention', () => {
  it(
    'eight workers on one lock: no overlap, increasing tokens, no lost update',
    async () => {
      const r = await newRun('faults-one')
      const rounds = scaled(3, 40)
      const workers = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          r.spawn(`w${i}`, {
            contend: {
              locks: ['one'],
              acquire: { expires: 10, timeout: 120 },
              pauseMs: [5, 40],
              rounds,
            },
          }),
        ),
      )
      await Promise.all(workers.map((w) => w.next('done', () => true, scaled(150_000, 900_000))))
      const result = r.assertSafe('contention: one lock')
      expect(result.holds).toBe(8 * rounds)
      expect(result.committed).toBe(8 * rounds)
      expect(r.history().counters.one).toBe(8 * rounds)
    },
    scaled(180_000, 1_000_000),
  )

  it(
    'eight workers on a set of locks while holders are SIGKILLed and SIGSTOPped at random',
    async () => {
      const r = await newRun('faults-set')
      const locks = ['alpha', 'beta', 'gamma']
      const plan = {
        locks,
        acquire: { expires: 2, timeout: 60 },
        pauseMs: [5, 80] as const,
        rounds: 1_000_000,
      }
      let next = 0
      const spawn = () => r.spawn(`w${next++}`, { contend: plan })
      const live: Worker[] = await Promise.all(Array.from({ length: 8 }, spawn))
      // Replacements start in the background: the faults keep coming while they load.
      const starting: Promise<Worker>[] = []
      const end = performance.now() + scaled(15_000, 180_000)
      let kills = 0
      let pauses = 0
      while (performance.now() < end) {
        await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 700))
        const index = Math.floor(Math.random() * live.length)
        const victim = live[index] as Worker
        if (Math.random() < 0.3) {
          live.splice(index, 1)
          await victim.kill()
          r.fault()
          kills++
          starting.push(
            spawn().then((w) => {
              live.push(w)
              return w
            }),
          )
        } else {
          victim.pause()
          r.fault()
          pauses++
          // Often long enough for its lease to expire and be taken over while it is stopped.
          await new Promise((resolve) => setTimeout(resolve, 300 + Math.random() * 3000))
          victim.resume()
        }
      }
      await Promise.all(starting)
      await Promise.all(live.map((w) => w.stop(90_000)))
      const result = r.assertSafe('contention: set of locks with kills and pauses')
      expect(kills + pauses).toBeGreaterThanOrEqual(5)
      expect(result.committed).toBeGreaterThan(20)
    },
    scaled(150_000, 600_000),
  )
})
