import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { clientVersion } from './client-version.ts'
import { ExitCode } from './exit-codes.ts'
import { type CliContext, runCli } from './program.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
const dir = mkdtempSync(join(tmpdir(), 'locks-version-'))
let server: Server
let url: string

beforeAll(async () => {
  server = createServer((request, response) => {
    if (request.url !== '/version') {
      response.writeHead(404).end()
      return
    }
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ major: '1', minor: '36', gitVersion: 'v1.36.3', goVersion: 'go1.25' }))
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((done) => server.close(done))
  rmSync(dir, { recursive: true, force: true })
})

function kubeconfig(server: string): string {
  const path = join(dir, `config-${Math.random().toString(36).slice(2)}`)
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "${server}", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: dev, context: { cluster: c, user: u } }]
current-context: dev
`,
  )
  return path
}

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
  const code = await runCli(args, ctx)
  return { code, stdout, stderr }
}

/** A port nothing listens on: one that was just bound and released. */
async function closedPort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done))
  const { port } = probe.address() as AddressInfo
  await new Promise((done) => probe.close(done))
  return port
}

describe('locks version', () => {
  it('reads the client version from package.json', () => {
    expect(clientVersion().gitVersion).toBe(`v${PACKAGE.version}`)
  })

  it('prints the client and the server version, as kubectl version', async () => {
    const result = await cli(['version', '--kubeconfig', kubeconfig(url)])
    expect(result).toEqual({
      code: ExitCode.ok,
      stdout: `Client Version: v${PACKAGE.version}\nServer Version: v1.36.3\n`,
      stderr: '',
    })
  })

  it('prints clientVersion and serverVersion objects with -o json', async () => {
    const result = await cli(['version', '--kubeconfig', kubeconfig(url), '-o', 'json'])
    expect(result.code).toBe(ExitCode.ok)
    const json = JSON.parse(result.stdout)
    expect(json.clientVersion).toMatchObject({ gitVersion: `v${PACKAGE.version}` })
    expect(json.serverVersion).toEqual({ major: '1', minor: '36', gitVersion: 'v1.36.3' })
  })

  it('prints the same with -o yaml', async () => {
    const result = await cli(['version', '--kubeconfig', kubeconfig(url), '-o', 'yaml'])
    expect(result.code).toBe(ExitCode.ok)
    expect(result.stdout).toContain(`clientVersion:\n  major: '0'`)
    expect(result.stdout).toContain('serverVersion:\n')
    expect(result.stdout).toContain('  gitVersion: v1.36.3\n')
  })

  it('prints the client version, then fails on stderr, when the server cannot be reached', async () => {
    const down = `http://127.0.0.1:${await closedPort()}`
    const result = await cli(['version', '--kubeconfig', kubeconfig(down)])
    expect(result.code).toBe(ExitCode.failure)
    expect(result.stdout).toBe(`Client Version: v${PACKAGE.version}\n`)
    expect(result.stderr).toContain(`error: cannot reach the Kubernetes API server at ${down} (ECONNREFUSED)`)
  })

  it('prints the client version without a cluster with --client', async () => {
    const result = await cli(['version', '--client'])
    expect(result).toEqual({ code: 0, stdout: `Client Version: v${PACKAGE.version}\n`, stderr: '' })
  })

  it('prints the client version with --version', async () => {
    const result = await cli(['--version'])
    expect(result).toEqual({ code: 0, stdout: `Client Version: v${PACKAGE.version}\n`, stderr: '' })
  })
})

/**
 * The modules a run of the CLI loads, as file URLs of this checkout (node_modules included), recorded
 * by a module hook in the child process.
 */
function loadedModules(args: readonly string[]): { status: number | null; stdout: string; urls: string[] } {
  const log = join(dir, `modules-${Math.random().toString(36).slice(2)}.log`)
  const hook = join(dir, 'record-modules.mjs')
  writeFileSync(
    hook,
    `import { registerHooks } from 'node:module'
import { appendFileSync } from 'node:fs'
registerHooks({
  load(url, context, next) {
    appendFileSync(process.env.MODULE_LOG, url + '\\n')
    return next(url, context)
  },
})
`,
  )
  writeFileSync(log, '')
  const result = spawnSync(process.execPath, ['--import', hook, join(ROOT, 'cli', 'main.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: dir, MODULE_LOG: log },
    encoding: 'utf8',
  })
  const urls = readFileSync(log, 'utf8').trimEnd().split('\n')
  return { status: result.status, stdout: result.stdout, urls }
}

describe.each([['--version'], ['--help'], ['run', '--help']])('locks %s', (...args) => {
  it('loads commander and the command tree, not the SDK', () => {
    const { status, stdout, urls } = loadedModules(args)
    expect(status).toBe(0)
    expect(stdout).not.toBe('')
    expect(urls.some((url) => url.includes('/node_modules/commander/'))).toBe(true)
    expect(urls.filter((url) => url.includes('/sdk/') || url.includes('@kubernetes'))).toEqual([])
  })
})
