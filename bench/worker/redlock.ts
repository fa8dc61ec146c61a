/** The Redis alternative: node-redlock. */
import { Redis } from 'ioredis'
import Redlock, { type Lock as RedlockLock } from 'redlock'
import { type Backend, exclusiveOnly } from './backend.ts'

/** node-redlock with its default settings; a wait longer than its retries starts a new `acquire()`. */
export function redlockBackend(port: number): Backend {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: false })
  const redlock = new Redlock([client])
  return {
    async acquire(name, request) {
      exclusiveOnly('redlock', request)
      const { expires, timeout } = request
      const deadline = timeout === null ? Number.POSITIVE_INFINITY : performance.now() + timeout * 1000
      for (;;) {
        try {
          const lock: RedlockLock = await redlock.acquire([`bench:${name}`], expires * 1000)
          return { release: async () => void (await lock.release()) }
        } catch (error) {
          if (performance.now() >= deadline || timeout === 0) throw error
        }
      }
    },
    async close() {
      await client.quit()
    },
  }
}
