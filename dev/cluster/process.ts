import { createWriteStream, existsSync, readFileSync } from 'node:fs'
import { Child, type Exit } from '../child-process.ts'

/**
 * One server process of the control plane, with its output in a log file.
 *
 * The process is started through `setpriv --pdeathsig SIGKILL` (where it is installed), so the kernel
 * kills it when the process that started it dies, even by SIGKILL: a crashed or interrupted test run
 * cannot leave an etcd or an API server behind. A process that exits without stopping it kills it too.
 */
export class ServerProcess {
  readonly name: string
  readonly logFile: string
  private readonly command: string
  private readonly args: readonly string[]
  private child: Child | undefined
  private exited: Promise<Exit | undefined> = Promise.resolve(undefined)

  constructor(name: string, command: string, args: readonly string[], logFile: string) {
    this.name = name
    this.command = command
    this.args = args
    this.logFile = logFile
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  get running(): boolean {
    return this.child?.alive ?? false
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`)
    const log = createWriteStream(this.logFile, { flags: 'a' })
    // Its own process group: a Ctrl-C in the terminal reaches the harness, which stops the
    // servers in order, rather than killing them under a program that still needs them.
    const child = new Child(this.name, this.command, this.args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      parentDeathSignal: 'SIGKILL',
      killOnExit: true,
      stderrLimit: 4_000,
    })
    child.process.stdout?.pipe(log, { end: false })
    child.process.stderr?.pipe(log, { end: false })
    this.child = child
    // Closed, not only exited: the log has all the server wrote.
    this.exited = child.closed.finally(() => log.end())
    // A spawn error surfaces as 'error'; the helper keeps it from crashing the process, and the
    // readiness wait reports it with the log.
    child.process.on('error', (error) => log.write(`failed to start: ${error.message}\n`))
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    await this.child?.stop('SIGTERM', graceMs)
    await this.exited
  }

  /** SIGKILL: a crash, for fault tests. */
  async kill(): Promise<void> {
    this.child?.kill('SIGKILL')
    await this.exited
  }

  /** SIGSTOP: resolves once all of its threads have stopped, so that it answers nothing from then on. */
  async pause(): Promise<void> {
    await this.child?.pause()
  }

  /** SIGCONT after `pause`: resolves once its threads run again. */
  async resume(): Promise<void> {
    await this.child?.resume()
  }

  logTail(lines = 30): string {
    if (!existsSync(this.logFile)) return '(no log)'
    return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  }
}

/** Whether a process exists (EPERM: it does, owned by someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
