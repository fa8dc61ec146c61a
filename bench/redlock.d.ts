// node-redlock v5 ships its declarations without a `types` condition in `exports`, which `nodenext`
// resolution needs; this declares the part the benchmark uses.
declare module 'redlock' {
  import type { Redis } from 'ioredis'

  export interface Lock {
    release(): Promise<unknown>
  }

  export default class Redlock {
    constructor(clients: Iterable<Redis>)
    acquire(resources: string[], duration: number): Promise<Lock>
  }
}
