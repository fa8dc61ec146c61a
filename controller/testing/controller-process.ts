import type { ChildProcess } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Child, type Exit } from '../../dev/child-process.ts'
import { readJsonLines } from '../../dev/json-lines.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

export type LogLine = Record<string, unknown> & { readonly level: string; readonly msg: string }

export type { Exit }

/** A `kube-locks-controller` child process, as it runs in a pod: its own process, JSON logs on stdout. */
export class ControllerProcess {
  readonly child: ChildProcess
  readonly name: string
  readonly logs: LogLine[] = []
  readonly exited: Promise<Exit>
  readonly #process: Child

  /**
   * @param entry the program to run: the TypeScript source (default) or the built
   * `dist/controller/main.js`; `nodeOptions` are passed to node before it.
   */
  constructor(
    name: string,
    args: readonly string[],
    env: Readonly<Record<string, string>> = {},
    options: {
      readonly entry?: string
      readonly nodeOptions?: readonly string[]
      /** Rewrites the command line, e.g. to start the controller inside a memory cgroup. */
      readonly wrap?: (command: string, args: readonly string[]) => [string, string[]]
    } = {},
  ) {
    this.name = name
    const entry = options.entry ?? 'controller/main.ts'
    const argv = [...(options.nodeOptions ?? []), entry, ...args]
    const [command, commandArgs] = options.wrap?.(process.execPath, argv) ?? [process.execPath, argv]
    this.#process = new Child(name, command, commandArgs, {
      cwd: ROOT,
      env: { ...process.env, POD_NAME: name, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child = this.#process.process
    if (this.child.stdout) {
      readJsonLines(
        this.child.stdout,
        (line) => this.logs.push(line as LogLine),
        (text) => this.logs.push({ level: 'invalid', msg: text }),
      )
    }
    this.exited = this.#process.exited
    running.add(this)
    void this.exited.then(() => running.delete(this))
  }

  /** What the process wrote on stderr. */
  get stderr(): string {
    return this.#process.stderr
  }

  get alive(): boolean {
    return this.#process.alive
  }

  /** Log lines with this `msg`. */
  logged(msg: string): LogLine[] {
    return this.logs.filter((line) => line.msg === msg)
  }

  /** Everything the process wrote, for failure messages. */
  output(): string {
    return `--- ${this.name} stdout ---\n${this.logs.map((line) => JSON.stringify(line)).join('\n')}\n--- stderr ---\n${this.stderr}`
  }

  /** Waits for a log line with `msg` (and matching `where`), failing early if the process exits. */
  async waitForLog(
    msg: string,
    where: (line: LogLine) => boolean = () => true,
    timeoutMs = 20_000,
  ): Promise<LogLine> {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const found = this.logs.find((line) => line.msg === msg && where(line))
      if (found) return found
      if (!this.alive) throw new Error(`${this.name} exited before logging "${msg}"\n${this.output()}`)
      if (performance.now() > deadline) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${this.name} to log "${msg}"\n${this.output()}`,
        )
      }
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  /** `http://host:port` of /metrics, /healthz, /readyz, from the startup log. */
  async baseUrl(): Promise<string> {
    const line = await this.waitForLog('serving /metrics, /healthz and /readyz')
    return `http://${String(line.address)}`
  }

  async get(path: string): Promise<{ status: number; text: string }> {
    const response = await fetch(`${await this.baseUrl()}${path}`)
    return { status: response.status, text: await response.text() }
  }

  /** Sum of the samples of `name` whose labels include `labels`. */
  async metric(name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
    const { text } = await this.get('/metrics')
    return sumSamples(text, name, labels)
  }

  /** Sends `signal` and waits for the exit, killing the process if it outlives `timeoutMs`. */
  async stop(
    signal: NodeJS.Signals = 'SIGTERM',
    timeoutMs = 30_000,
  ): Promise<Exit & { readonly ms: number }> {
    const started = performance.now()
    const exit = await this.#process.stop(signal, timeoutMs)
    return { ...exit, ms: performance.now() - started }
  }
}

const running = new Set<ControllerProcess>()

/** Kills every controller process still running and waits for them; for `afterEach`. */
export async function killControllers(): Promise<void> {
  await Promise.all([...running].map((controller) => controller.stop('SIGKILL', 5_000)))
}

export function sumSamples(
  text: string,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  let sum = 0
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (match === null || match[1] !== name) continue
    const sampleLabels = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    )
    if (Object.entries(labels).every(([key, value]) => sampleLabels[key] === value)) sum += Number(match[3])
  }
  return sum
}

/**
 * Arguments that confine a controller to one namespace, as the tests and benchmarks run it: it
 * manages only that namespace's locks, keeps its leader-election lock there and serves HTTP on a
 * free port. `flags` come after and may add to them.
 */
export function namespacedArgs(kubeconfig: string, namespace: string, ...flags: string[]): string[] {
  return [
    '--kubeconfig',
    kubeconfig,
    '--namespaces',
    namespace,
    '--listen',
    '127.0.0.1:0',
    '--leader-election-namespace',
    namespace,
    ...flags,
  ]
}
