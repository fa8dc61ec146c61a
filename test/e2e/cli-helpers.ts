import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, onTestFinished } from 'vitest'
import { Child } from '../../dev/child-process.ts'
import { kubeconfigPath } from './support.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const MAIN = join(ROOT, 'cli', 'main.ts')
const GOLDEN = join(dirname(fileURLToPath(import.meta.url)), 'golden')

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface CliOptions {
  /** @default the admin kubeconfig of the cluster under test */
  readonly kubeconfig?: string
  readonly env?: Record<string, string>
}

/**
 * The CLI as a user runs it: a child process of the project's Node, with `--kubeconfig` added and no
 * KUBECONFIG or home configuration leaking in from the machine.
 */
export class CliProcess {
  readonly child: ChildProcess
  readonly done: Promise<CliResult>
  readonly #process: Child
  #stdout = ''
  #stderr = ''
  #waiters: (() => void)[] = []

  constructor(args: readonly string[], options: CliOptions = {}) {
    const kubeconfig = options.kubeconfig ?? kubeconfigPath()
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: '/nonexistent', ...options.env }
    // Right after the command name, so that it never lands among the arguments of `run`'s command.
    const [command = '', ...rest] = args
    this.#process = new Child(
      'locks',
      process.execPath,
      [MAIN, command, '--kubeconfig', kubeconfig, ...rest],
      {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        // Kept here, where each chunk also wakes the waits.
        stderrLimit: 0,
      },
    )
    this.child = this.#process.process
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stdout += chunk
      this.#notify()
    })
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr += chunk
      this.#notify()
    })
    // Closed, not only exited: the result has all it printed.
    this.done = this.#process.closed.then(({ code, signal }) => {
      this.#notify()
      return { code, signal, stdout: this.#stdout, stderr: this.#stderr }
    })
    onTestFinished(async () => {
      this.#process.kill('SIGKILL')
      await this.done
    })
  }

  get stdout(): string {
    return this.#stdout
  }

  get stderr(): string {
    return this.#stderr
  }

  /** Resolves when `check(stdout)` holds; fails after the deadline with what was printed. */
  async waitForOutput(what: string, check: (stdout: string) => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = performance.now() + timeoutMs
    while (!check(this.#stdout)) {
      const exited = !this.#process.alive
      const left = deadline - performance.now()
      if (exited || left <= 0) {
        throw new Error(
          `${exited ? 'the CLI exited' : `timed out after ${timeoutMs} ms`} before ${what}; stdout:\n${this.#stdout}\nstderr:\n${this.#stderr}`,
        )
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  #notify(): void {
    for (const wake of this.#waiters.splice(0)) wake()
  }
}

/** Runs the CLI to completion. */
export function locks(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return new CliProcess(args, options).done
}

/**
 * Output with what changes from run to run replaced: the test's namespace, ages and times, uids and
 * resourceVersions. In tables, column padding is folded to three spaces, since widths follow the times.
 */
export function normalise(text: string, namespace: string, options: { table?: boolean } = {}): string {
  const stable = text
    .replaceAll(namespace, '<namespace>')
    .replace(/"(uid|resourceVersion|creationTimestamp|acquireTime|renewTime)": "[^"]*"/g, '"$1": "<$1>"')
    .replace(
      /^(\s*(?:- )?)(uid|resourceVersion|creationTimestamp|acquireTime|renewTime): .*$/gm,
      '$1$2: <$2>',
    )
    .replace(/(?<![\w.-])\d+[smhdy](?:\d+[smhd])?(?![\w-])/g, '<t>')
  return options.table ? stable.replace(/ {2,}/g, '   ') : stable
}

/**
 * Compares with `test/e2e/golden/<name>`; with `UPDATE_GOLDEN=1` writes the file instead.
 */
export function expectGolden(name: string, actual: string): void {
  const path = join(GOLDEN, name)
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(GOLDEN, { recursive: true })
    writeFileSync(path, actual)
    return
  }
  if (!existsSync(path)) {
    throw new Error(`golden file ${path} is missing: run the test with UPDATE_GOLDEN=1 and review it`)
  }
  expect(actual, `output differs from ${path} (UPDATE_GOLDEN=1 rewrites it)`).toBe(readFileSync(path, 'utf8'))
}
