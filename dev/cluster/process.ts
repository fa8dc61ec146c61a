import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, existsSync, readFileSync } from 'node:fs'

const live = new Set<ChildProcess>()
let exitHookInstalled = false

/**
 * One server process of the control plane, with its output in a log file.
 *
 * The process is started through `setpriv --pdeathsig SIGKILL`, so the kernel kills it
 * when the process that started it dies, even by SIGKILL: a crashed or interrupted test
 * run cannot leave an etcd or an API server behind.
 */
export class ServerProcess {
  readonly name: string
  readonly logFile: string
  private readonly command: string
  private readonly args: readonly string[]
  private child: ChildProcess | undefined
  private exited: Promise<unknown> = Promise.resolve()

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
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`)
    installExitHook()
    const log = createWriteStream(this.logFile, { flags: 'a' })
    // Its own process group: a Ctrl-C in the terminal reaches the harness, which stops the
    // servers in order, rather than killing them under a program that still needs them.
    const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', this.command, ...this.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    child.stdout?.pipe(log, { end: false })
    child.stderr?.pipe(log, { end: false })
    live.add(child)
    this.child = child
    this.exited = once(child, 'close').finally(() => {
      live.delete(child)
      log.end()
    })
    // A spawn error (setpriv missing) surfaces as 'error'; keep it from crashing the process
    // and let the readiness wait report it with the log.
    child.on('error', (error) => log.write(`failed to start: ${error.message}\n`))
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return this.exited.then(() => undefined)
    this.child?.kill('SIGTERM')
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs)
    try {
      await this.exited
    } finally {
      clearTimeout(timer)
    }
  }

  /** SIGKILL: a crash, for fault tests. */
  async kill(): Promise<void> {
    if (this.running) this.child?.kill('SIGKILL')
    await this.exited
  }

  /** Sends a signal without waiting (SIGSTOP/SIGCONT for pause tests). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child?.kill(signal)
  }

  logTail(lines = 30): string {
    if (!existsSync(this.logFile)) return '(no log)'
    return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  }
}

/** Last resort when the harness's process exits without stopping what it started. */
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL')
  })
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
