import type { ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { Child } from '../dev/child-process.ts'
import { readJsonLines } from '../dev/json-lines.ts'

/** A JSON event of a worker or a peer; `t` is wall-clock Unix milliseconds. */
export interface PeerEvent {
  readonly event: string
  readonly t: number
  readonly id?: string
  readonly [field: string]: unknown
}

const running = new Set<Peer>()

/**
 * A child process that speaks JSON lines: commands on stdin, events on stdout. Every peer is tracked
 * until it exits, so that `killAll()` leaves nothing behind.
 */
export class Peer {
  readonly name: string
  readonly child: ChildProcess
  readonly events: PeerEvent[] = []
  /** Its exit code, once it has exited and all it wrote has been read. */
  readonly exited: Promise<number | null>
  #waiters = new Set<() => void>()
  readonly #process: Child

  constructor(name: string, command: string, args: readonly string[], env?: NodeJS.ProcessEnv) {
    this.name = name
    this.#process = new Child(name, command, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: env ?? process.env,
      stderrLimit: 4000,
      onExit: () => {
        running.delete(this)
        this.#notify()
      },
    })
    this.child = this.#process.process
    running.add(this)
    this.exited = this.#process.closed.then((exit) => exit.code)
    this.child.stdin?.on('error', () => {})
    if (this.child.stdout) {
      readJsonLines(this.child.stdout, (event) => {
        this.events.push(event as PeerEvent)
        this.#notify()
      })
    }
  }

  get pid(): number | undefined {
    return this.child.pid
  }

  get alive(): boolean {
    return running.has(this)
  }

  send(command: object | string): void {
    this.child.stdin?.write(`${typeof command === 'string' ? command : JSON.stringify(command)}\n`)
  }

  /**
   * Resolves with the first event (from `from` on) matching `match`; rejects after `timeoutMs`, or
   * with the reason of `signal` once it aborts.
   */
  async next(
    match: (event: PeerEvent) => boolean,
    timeoutMs: number,
    from = 0,
    signal?: AbortSignal,
  ): Promise<PeerEvent> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      signal?.throwIfAborted()
      const found = this.events.slice(from).find(match)
      if (found !== undefined) return found
      const failure = this.events.slice(from).find((e) => e.event === 'failed')
      if (failure !== undefined) throw new Error(`${this.name}: ${String(failure.message)}`)
      if (!this.alive)
        throw new Error(`${this.name} exited early: ${this.#process.stderr.trim().slice(-1500)}`)
      const left = deadline - performance.now()
      if (left <= 0) throw new Error(`${this.name}: no matching event within ${timeoutMs / 1000} s`)
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer)
          this.#waiters.delete(wake)
          signal?.removeEventListener('abort', wake)
          resolve()
        }
        const timer = setTimeout(wake, left)
        this.#waiters.add(wake)
        signal?.addEventListener('abort', wake, { once: true })
      })
    }
  }

  /** SIGKILL, and the wall-clock time just before it was sent. */
  kill(): number {
    const t = performance.timeOrigin + performance.now()
    this.child.kill('SIGKILL')
    return t
  }

  /** Asks the process to exit (closes stdin, or sends `signal`), then SIGKILL after `graceMs`. */
  async stop(graceMs = 5_000, signal?: NodeJS.Signals): Promise<void> {
    if (!this.alive) return
    if (signal === undefined) this.child.stdin?.end()
    else this.child.kill(signal)
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs)
    await this.exited
    clearTimeout(timer)
  }

  #notify(): void {
    for (const wake of [...this.#waiters]) wake()
  }
}

/** Kills every peer still running. */
export async function killAll(): Promise<void> {
  const peers = [...running]
  for (const peer of peers) peer.child.kill('SIGKILL')
  await Promise.all(peers.map((peer) => peer.exited))
}

export function runningCount(): number {
  return running.size
}

/**
 * CPU time in milliseconds of the processes `pids` that are alive, plus that of every child this
 * process has reaped (`cutime` + `cstime` of its own `/proc` entry): the difference of two readings
 * counts a child that exits in between too. Linux only; a process gone meanwhile counts 0.
 */
export async function cpuMs(pids: readonly number[], withReaped = true): Promise<number> {
  const ticks = async (pid: number | 'self', fields: readonly number[]) => {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
      // Fields after the command name (which may hold spaces), from field 3 (`state`) on.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return fields.reduce((sum, field) => sum + Number(rest[field - 3]), 0)
    } catch {
      return 0
    }
  }
  const counts = await Promise.all([
    ...pids.map((pid) => ticks(pid, [14, 15])),
    ...(withReaped ? [ticks('self', [16, 17])] : []),
  ])
  return (counts.reduce((sum, n) => sum + n, 0) * 1000) / CLOCK_TICKS
}

/** `getconf CLK_TCK` on every Linux in use. */
const CLOCK_TICKS = 100
