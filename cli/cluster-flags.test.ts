import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ExitCode } from './exit-codes.ts'
import { type CliContext, runCli } from './program.ts'

// The flags every command that talks to the cluster takes, in kubectl's forms: `-v` takes a level (at 6
// each request is logged with its status and duration), `--request-timeout` a duration.

const dir = mkdtempSync(join(tmpdir(), 'locks-verbosity-'))
let server: Server
let config: string
let url: string

beforeAll(async () => {
  server = createServer((request, response) => {
    if (request.url?.includes('/leases/')) {
      response.writeHead(404, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: 'not found' }))
      return
    }
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ kind: 'LeaseList', items: [], metadata: { resourceVersion: '7' } }))
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  config = join(dir, 'config')
  writeFileSync(
    config,
    `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "${url}", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: dev, context: { cluster: c, user: u, namespace: shop } }]
current-context: dev
`,
  )
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((done) => server.close(done))
  rmSync(dir, { recursive: true, force: true })
})

async function cli(args: string[]) {
  let stdout = ''
  let stderr = ''
  const ctx: CliContext = {
    stdout: (text) => {
      stdout += text
    },
    stderr: (text) => {
      stderr += text
    },
    env: {},
    home: join(dir, 'no-home'),
    now: () => Date.now(),
    signal: new AbortController().signal,
    signals: process,
  }
  const code = await runCli([...args, '--kubeconfig', config], ctx)
  return { code, stdout, stderr }
}

const REQUEST =
  /^GET http:\/\/127\.0\.0\.1:\d+\/apis\/coordination\.k8s\.io\/v1\/namespaces\/shop\/leases\?\S+ 200 OK in \d+ milliseconds$/

function requestLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('GET '))
}

describe('-v', () => {
  it.each([[['-v=6']], [['--v=6']], [['-v', '6']], [['-v6']], [['-v=9']], [['-v']], [['--verbose']]])(
    '%j logs each request with its status and duration',
    async (flags) => {
      const result = await cli(['list', '-o', 'name', ...flags])
      expect(result.code).toBe(ExitCode.ok)
      const lines = requestLines(result.stderr)
      expect(lines.length).toBeGreaterThan(0)
      for (const line of lines) expect(line).toMatch(REQUEST)
    },
  )

  it.each([[[]], [['-v=0']], [['-v', '5']]])('%j logs no request', async (flags) => {
    const result = await cli(['list', '-o', 'name', ...flags])
    expect(result.code).toBe(ExitCode.ok)
    expect(requestLines(result.stderr)).toEqual([])
  })

  it('logs the status the server answered', async () => {
    const result = await cli(['get', 'absent', '-v=6'])
    expect(result.code).toBe(ExitCode.failure)
    expect(requestLines(result.stderr)[0]).toMatch(/\/leases\/absent 404 Not Found in \d+ milliseconds$/)
  })

  it.each([['-v=x'], ['-v=11'], ['--v=-1']])('%s is a usage error', async (flag) => {
    const result = await cli(['list', flag])
    expect(result.code).toBe(ExitCode.usage)
    expect(result.stderr).toContain('-v: expected a log level from 0 to 10')
  })
})

describe('--request-timeout', () => {
  it.each(['0', '30', '30s', '1m', '1h2m3s'])('takes %s', async (value) => {
    const result = await cli(['list', '-o', 'name', '--request-timeout', value])
    expect(result).toEqual({ code: ExitCode.ok, stdout: '', stderr: '' })
  })

  it('is a usage error for what is not a duration', async () => {
    const result = await cli(['list', '--request-timeout', '30x'])
    expect(result.code).toBe(ExitCode.usage)
    expect(result.stderr).toContain(
      '--request-timeout: expected a duration such as `0`, `30` (seconds), `30s`',
    )
  })

  it('is 0 by default, as kubectl: no client-side timeout', async () => {
    const result = await cli(['list', '--help'])
    expect(result.stdout).toMatch(/--request-timeout <duration>[\s\S]*\(default: 0\)/)
  })
})
