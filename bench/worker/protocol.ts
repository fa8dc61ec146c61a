/**
 * How the benchmark drives a worker process: its configuration (the process's one argument), the
 * commands it reads on stdin, and the events it writes on stdout, one JSON object a line.
 */
export type WorkerConfig =
  | {
      readonly backend: 'kube-locks'
      readonly kubeconfig: string
      readonly namespace: string
      /** Prefix of the holder identities, so that tickets and leases tell which process they are of. */
      readonly identity?: string
    }
  | {
      readonly backend: 'raw'
      readonly kubeconfig: string
      readonly namespace: string
      /** Reuse one connection pool (kept-alive connections), as the SDK does; else client-node's default. */
      readonly reuseConnections: boolean
    }
  | { readonly backend: 'redlock'; readonly redisPort: number }

export type Command =
  | {
      readonly op: 'acquire'
      readonly id: string
      readonly name: string
      /** Seconds. */
      readonly expires: number
      /** Seconds; `null` waits for as long as it takes. */
      readonly timeout: number | null
      readonly renew?: boolean
      /** Release this long after acquiring (milliseconds); without it, wait for a `release` command. */
      readonly holdMs?: number
      /** kube-locks: wait in line (the default) or race. */
      readonly fair?: boolean
      /** kube-locks: one of this many holders of a semaphore. */
      readonly limit?: number
      /** kube-locks: a shared hold. */
      readonly shared?: boolean
    }
  | { readonly op: 'release'; readonly id: string }
  /** Acquire and release `name` over and over, one at a time, for `seconds` or `count` cycles. */
  | {
      readonly op: 'cycle'
      readonly name: string
      readonly seconds?: number
      readonly count?: number
      readonly fair?: boolean
      /** kube-locks: a slot of a semaphore of this many holders, or a shared hold, instead of the lock. */
      readonly limit?: number
      readonly shared?: boolean
      /** A pause after each cycle, to change the lock at a steady rate. */
      readonly pauseMs?: number
    }
  /** kube-locks: the lease requests this process sent so far, by verb and object (`update lock`). */
  | { readonly op: 'counts' }
  /** Acquire `count` distinct locks (held, not renewed) and report the process's memory. */
  | {
      readonly op: 'hold-many'
      readonly prefix: string
      readonly count: number
      readonly concurrency: number
      /**
       * After reporting its memory, keep holding for this long while doing light work (see
       * `settle` in `bench/worker.ts`), then report it again as `settled`.
       */
      readonly settleSeconds?: number
    }
  /** Watch the namespace's leases: `watching` once the watch is open, then `watched` for each change. */
  | { readonly op: 'watch' }
  /** raw: open the bare watch (see `Backend.watchBare`); `watching` once it is open. */
  | { readonly op: 'watch-bare' }
  | { readonly op: 'exit' }

/** Unix milliseconds with sub-millisecond precision, comparable across the processes of one machine. */
export const now = (): number => performance.timeOrigin + performance.now()

/** Writes one event; `t` is the wall-clock time in Unix milliseconds. */
export const emit = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ event, t: now(), ...fields })}\n`)
