import { type ChildProcess, type StdioOptions, spawn, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { readLines } from './json-lines.ts'

/** How a child process ended. */
export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface ChildOptions {
  readonly cwd?: string
  /** Defaults to this process's environment. */
  readonly env?: NodeJS.ProcessEnv
  /** Defaults to `['ignore', 'pipe', 'pipe']`. */
  readonly stdio?: StdioOptions
  /** Its own process group, so that a Ctrl-C in the terminal does not reach it. Defaults to false. */
  readonly detached?: boolean
  /**
   * The signal the kernel sends the child when this process dies, even by SIGKILL (`setpriv
   * --pdeathsig`), where `setpriv` is installed; without it the child may outlive a killed parent.
   */
  readonly parentDeathSignal?: NodeJS.Signals
  /** Keeps only the last this many characters of stderr. Defaults to all of it. */
  readonly stderrLimit?: number
  /** Called on the `exit` event, before `exited` resolves. */
  readonly onExit?: (exit: Exit) => void
  /**
   * SIGKILLs it when this process exits without having stopped it (a last resort: an `exit` handler
   * cannot wait). Defaults to false.
   */
  readonly killOnExit?: boolean
}

/** The children started with `killOnExit` that are still running. */
const live = new Set<Child>()
let exitHookInstalled = false

function killOnExit(child: Child): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once('exit', () => {
      for (const running of live) running.kill('SIGKILL')
    })
  }
  live.add(child)
  void child.exited.then(() => live.delete(child))
}

let setprivFound: boolean | undefined

function hasSetpriv(): boolean {
  setprivFound ??= spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0
  return setprivFound
}

/**
 * A child process of the development tooling: started once, its exit awaited once, its stderr kept
 * for failure messages, stopped by a signal and then SIGKILL. Benchmarks, the demo, the fault suite
 * and the test helpers all start their processes through this one helper.
 */
export class Child {
  readonly name: string
  readonly process: ChildProcess
  readonly exited: Promise<Exit>
  /** Resolves after `exited`, once its output streams have closed too: all it wrote has been read. */
  readonly closed: Promise<Exit>
  #stderr = ''
  #exit: Exit | undefined

  constructor(name: string, command: string, args: readonly string[], options: ChildOptions = {}) {
    this.name = name
    const [file, argv] =
      options.parentDeathSignal !== undefined && hasSetpriv()
        ? ['setpriv', ['--pdeathsig', options.parentDeathSignal, '--', command, ...args]]
        : [command, [...args]]
    this.process = spawn(file, argv, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
      detached: options.detached ?? false,
    })
    const limit = options.stderrLimit ?? Number.POSITIVE_INFINITY
    this.process.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr =
        limit === Number.POSITIVE_INFINITY
          ? this.#stderr + chunk
          : limit <= 0
            ? ''
            : (this.#stderr + chunk).slice(-limit)
    })
    this.exited = new Promise((resolveExit) => {
      this.process.once('exit', (code, signal) => {
        this.#exit = { code, signal }
        options.onExit?.(this.#exit)
        resolveExit(this.#exit)
      })
    })
    this.closed = new Promise((resolveClose) => {
      this.process.once('close', (code, signal) => resolveClose({ code, signal }))
    })
    if (options.killOnExit) killOnExit(this)
    // A spawn failure or a broken IPC channel must not crash the parent; the exit (or its absence
    // in a wait with a deadline) reports it.
    this.process.on('error', (error) => {
      this.#stderr += `${error.message}\n`
    })
  }

  get pid(): number | undefined {
    return this.process.pid
  }

  get alive(): boolean {
    return this.#exit === undefined
  }

  /** How it ended, once it has. */
  get exit(): Exit | undefined {
    return this.#exit
  }

  /** What it wrote on stderr (its tail, with `stderrLimit`). */
  get stderr(): string {
    return this.#stderr
  }

  /** Sends `signal` (no-op once exited). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.process.kill(signal)
  }

  /**
   * SIGSTOPs it and resolves once every one of its threads has stopped. The kernel delivers the stop
   * to each thread on its own, after `kill()` has returned: a thread that was running may still
   * answer a request sent right after the signal.
   */
  async pause(timeoutMs = 5_000): Promise<void> {
    this.kill('SIGSTOP')
    await this.#waitThreads('stopped', (states) => states.every((state) => state === 'T'), timeoutMs)
  }

  /** SIGCONTs it and resolves once none of its threads is stopped any more. */
  async resume(timeoutMs = 5_000): Promise<void> {
    this.kill('SIGCONT')
    await this.#waitThreads('running', (states) => !states.includes('T'), timeoutMs)
  }

  /** Waits until `done` holds for the scheduler states of its threads; at once where `/proc` is missing. */
  async #waitThreads(what: string, done: (states: string[]) => boolean, timeoutMs: number): Promise<void> {
    const pid = this.pid
    if (pid === undefined || !existsSync(`/proc/${pid}/task`)) return
    const deadline = performance.now() + timeoutMs
    while (this.alive && !done(threadStates(pid))) {
      if (performance.now() > deadline)
        throw new Error(`${this.name} (pid ${pid}): its threads were not ${what} within ${timeoutMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
  }

  /** Sends `signal`, then SIGKILL if it has not exited within `graceMs`; resolves with the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<Exit> {
    if (!this.alive) return this.exited
    this.process.kill(signal)
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Starts `command` as a tracked child process. */
export function startChild(
  name: string,
  command: string,
  args: readonly string[],
  options: ChildOptions = {},
): Child {
  return new Child(name, command, args, options)
}

export interface RunOptions {
  readonly cwd?: string
  /** Defaults to this process's environment. */
  readonly env?: NodeJS.ProcessEnv
  /** Each line of its stderr, as it comes (a build's progress). */
  readonly onStderrLine?: (line: string) => void
  /** How many of the last lines of stderr a failure's message carries. Defaults to 40. */
  readonly stderrLines?: number
}

/**
 * Runs `command` to completion and resolves with its stdout, trimmed. A non-zero exit rejects with the
 * command line and the last lines of its stderr; a failure to start rejects with the spawn error as
 * `cause` (`code: 'ENOENT'` for a command that is not installed).
 */
export function runToCompletion(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<string> {
  const child = new Child(command, command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its stderr is read line by line below.
    stderrLimit: 0,
  })
  const keep = options.stderrLines ?? 40
  let stdout = ''
  let stderrTail: string[] = []
  child.process.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  if (child.process.stderr) {
    readLines(child.process.stderr, (line) => {
      options.onStderrLine?.(line)
      stderrTail = [...stderrTail, line].slice(-keep)
    })
  }
  return new Promise((resolve, reject) => {
    child.process.on('error', (error) =>
      reject(new Error(`cannot run ${command}: ${error.message}`, { cause: error })),
    )
    void child.closed.then(({ code, signal }) => {
      if (code === 0) resolve(stdout.trim())
      else
        reject(
          new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}:\n${stderrTail.join('\n')}`),
        )
    })
  })
}

/**
 * The scheduler state of each thread of `pid` (`R` running, `S` sleeping, `T` stopped, …); none once
 * it has exited, and a thread that exits while it is read is left out.
 */
function threadStates(pid: number): string[] {
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8')
    } catch {
      return undefined
    }
  }
  let tids: string[]
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return []
  }
  // The state follows the command name in parentheses, which may itself hold spaces and parentheses.
  return tids
    .map((tid) => read(`/proc/${pid}/task/${tid}/stat`))
    .filter((stat) => stat !== undefined)
    .map((stat) => stat.charAt(stat.lastIndexOf(')') + 2))
}
