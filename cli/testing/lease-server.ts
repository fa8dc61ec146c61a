import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { LeaseJson } from '../api.ts'
import { type CliContext, runCli } from '../program.ts'

/**
 * A fake Lease API for the CLI's tests: lists honour label selectors (`k=v`, `k`, `!k`), gets by name,
 * watches stay open until the test pushes events to them, and every write is recorded and, unless
 * {@link LeaseServer.answerWrite} answers it, refused (the commands under test here must write
 * nothing, or say so).
 */
export class LeaseServer {
  readonly leases: LeaseJson[]
  /** `METHOD path?query`, in order. */
  readonly requests: string[] = []
  readonly writes: string[] = []
  /** The bodies of the writes, parsed, in the order of {@link writes}. */
  readonly writeBodies: unknown[] = []
  /** Answers writes instead of refusing them: the status and body to send. */
  answerWrite:
    | ((method: string, path: string, body: unknown) => { status: number; body: unknown })
    | undefined
  readonly #watches = new Set<{ selector: string; response: ServerResponse }>()
  readonly #server: Server
  #url = ''
  #dir: string | undefined

  constructor(leases: readonly LeaseJson[]) {
    this.leases = [...leases]
    this.#server = createServer((req, res) => this.#handle(req, res))
  }

  get url(): string {
    return this.#url
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    const address = this.#server.address()
    this.#url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
    return this
  }

  /** A kubeconfig naming this server, context namespace `shop`. */
  kubeconfig(): string {
    this.#dir ??= mkdtempSync(join(tmpdir(), 'locks-fake-api-'))
    const path = join(this.#dir, 'config')
    writeFileSync(
      path,
      `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: { server: "${this.#url}", insecure-skip-tls-verify: true }
users:
- name: u
  user: { token: t }
contexts:
- name: dev
  context: { cluster: c, user: u, namespace: shop }
current-context: dev
`,
    )
    return path
  }

  /** Open watches whose selector matches `lease`. */
  watching(lease: LeaseJson): number {
    return [...this.#watches].filter((watch) => matches(watch.selector, lease)).length
  }

  /** Sends an event to every open watch whose selector matches the lease. */
  push(type: 'ADDED' | 'MODIFIED' | 'DELETED', lease: LeaseJson): void {
    for (const watch of this.#watches) {
      if (matches(watch.selector, lease)) watch.response.write(`${JSON.stringify({ type, object: lease })}\n`)
    }
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise((resolve) => this.#server.close(resolve))
    if (this.#dir !== undefined) rmSync(this.#dir, { recursive: true, force: true })
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x')
    this.requests.push(`${req.method} ${url.pathname}${url.search}`)
    res.setHeader('content-type', 'application/json')
    if (req.method !== 'GET' && this.answerWrite !== undefined) {
      const answer = this.answerWrite
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        const body: unknown = text === '' ? undefined : JSON.parse(text)
        this.writes.push(`${req.method} ${url.pathname}`)
        this.writeBodies.push(body)
        const { status, body: reply } = answer(req.method ?? '', url.pathname, body)
        res.writeHead(status)
        res.end(JSON.stringify(reply))
      })
      return
    }
    if (req.method !== 'GET') {
      this.writes.push(`${req.method} ${url.pathname}`)
      res.writeHead(500)
      res.end(JSON.stringify({ kind: 'Status', code: 500, message: 'this test allows no writes' }))
      return
    }
    const match = /\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/.exec(url.pathname)
    const namespace = match?.[1]
    const name = match?.[2] === undefined ? undefined : decodeURIComponent(match[2])
    const inScope = this.leases.filter(
      (lease) => namespace === undefined || lease.metadata?.namespace === namespace,
    )
    if (name !== undefined) {
      const lease = inScope.find((candidate) => candidate.metadata?.name === name)
      res.writeHead(lease ? 200 : 404)
      res.end(JSON.stringify(lease ?? { kind: 'Status', code: 404, reason: 'NotFound' }))
      return
    }
    const selector = url.searchParams.get('labelSelector') ?? ''
    if (url.searchParams.get('watch')) {
      const watch = { selector, response: res }
      this.#watches.add(watch)
      res.writeHead(200)
      res.flushHeaders()
      res.on('close', () => this.#watches.delete(watch))
      return
    }
    res.end(
      JSON.stringify({
        items: inScope.filter((lease) => matches(selector, lease)),
        metadata: { resourceVersion: '1000' },
      }),
    )
  }
}

function matches(selector: string, lease: LeaseJson): boolean {
  const labels = lease.metadata?.labels ?? {}
  return selector
    .split(',')
    .filter((term) => term !== '')
    .every((term) => {
      if (term.startsWith('!')) return labels[term.slice(1)] === undefined
      const [key = '', value] = term.split('=')
      return value === undefined ? labels[key] !== undefined : labels[key] === value
    })
}

export interface CliRun {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs the CLI in this process against `kubeconfig`, at a fixed wall-clock time. */
export async function runLocks(
  args: readonly string[],
  kubeconfig: string,
  options: { signal?: AbortSignal; onStdout?: (stdout: string) => void; now?: number } = {},
): Promise<CliRun> {
  let stdout = ''
  let stderr = ''
  const ctx: CliContext = {
    stdout: (text) => {
      stdout += text
      options.onStdout?.(stdout)
    },
    stderr: (text) => {
      stderr += text
    },
    env: { KUBECONFIG: kubeconfig },
    home: undefined,
    now: () => options.now ?? Date.parse('2030-01-01T12:00:00Z'),
    monotonic: () => performance.now(),
    signal: options.signal ?? new AbortController().signal,
    signals: process,
  }
  const code = await runCli(args, ctx)
  return { code, stdout, stderr }
}
