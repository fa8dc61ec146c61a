import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { type RequestOptions, request } from 'node:https'
import { createServer } from 'node:net'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import { Peer } from './processes.ts'

const exec = promisify(execFile)

export function loadKubeConfig(path: string): KubeConfig {
  const kubeConfig = new KubeConfig()
  kubeConfig.loadFromFile(path)
  return kubeConfig
}

export async function createNamespace(kubeConfig: KubeConfig, name: string): Promise<void> {
  await kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } })
}

/** GET a path of the API server with the kubeconfig's credentials, as text. */
export async function apiGet(kubeConfig: KubeConfig, path: string): Promise<string> {
  const server = kubeConfig.getCurrentCluster()?.server
  if (server === undefined) throw new Error('the kubeconfig names no cluster server')
  const url = new URL(path, server)
  const options: RequestOptions = { method: 'GET' }
  await kubeConfig.applyToHTTPSOptions(options)
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () =>
        res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${path}: ${res.statusCode} ${body}`)),
      )
    })
    req.on('error', reject)
    req.end()
  })
}

/** `apiserver_request_total`, summed by `verb resource`. */
export type RequestCounts = Map<string, number>

export async function requestCounts(kubeConfig: KubeConfig): Promise<RequestCounts> {
  const text = await apiGet(kubeConfig, '/metrics')
  const counts: RequestCounts = new Map()
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue
    const labels = line.slice(line.indexOf('{') + 1, line.lastIndexOf('}'))
    const verb = /(?:^|,)verb="([^"]*)"/.exec(labels)?.[1] ?? ''
    const resource = /(?:^|,)resource="([^"]*)"/.exec(labels)?.[1] ?? ''
    const value = Number(line.slice(line.lastIndexOf(' ') + 1))
    const key = `${verb} ${resource}`
    counts.set(key, (counts.get(key) ?? 0) + value)
  }
  return counts
}

/** Requests between two readings: lease requests by verb, lease total, and all requests. */
export function requestDelta(
  before: RequestCounts,
  after: RequestCounts,
): { leases: number; all: number; byVerb: Record<string, number> } {
  let leases = 0
  let all = 0
  const byVerb: Record<string, number> = {}
  for (const [key, value] of after) {
    const delta = value - (before.get(key) ?? 0)
    if (delta === 0) continue
    all += delta
    const [verb, resource] = key.split(' ') as [string, string]
    if (resource === 'leases') {
      leases += delta
      byVerb[verb] = (byVerb[verb] ?? 0) + delta
    }
  }
  return { leases, all, byVerb }
}

/** Requests by kind (a verb, a Redis command): what a system under test sends while it waits. */
export type Tally = Readonly<Record<string, number>>

/** Lease requests to the API server, by verb, from `apiserver_request_total`. */
export async function leaseRequests(kubeConfig: KubeConfig): Promise<Tally> {
  const out: Record<string, number> = {}
  for (const [key, value] of await requestCounts(kubeConfig)) {
    const [verb, resource] = key.split(' ') as [string, string]
    if (resource === 'leases') out[verb] = (out[verb] ?? 0) + value
  }
  return out
}

/**
 * Commands sent to a redis-server, by command, from `INFO commandstats`: those that run scripts, as
 * redlock sends nothing else. Redis counts the commands a script runs (`exists`, `set`, …) as well;
 * they are not requests of a client and are left out, as are the INFO calls of this function.
 */
export async function redisCommands(port: number): Promise<Tally> {
  const { stdout } = await exec('redis-cli', ['-p', String(port), 'INFO', 'commandstats'])
  const out: Record<string, number> = {}
  for (const match of stdout.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const [, command, calls] = match as unknown as [string, string, string]
    if (SCRIPT_COMMANDS.has(command)) out[command] = Number(calls)
  }
  return out
}

const SCRIPT_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro'])

/** What was sent between two tallies: the total and the kinds that changed. */
export function tallyDelta(before: Tally, after: Tally): { total: number; byKind: Record<string, number> } {
  let total = 0
  const byKind: Record<string, number> = {}
  for (const [kind, value] of Object.entries(after)) {
    const delta = value - (before[kind] ?? 0)
    if (delta === 0) continue
    total += delta
    byKind[kind] = delta
  }
  return { total, byKind }
}

/** Builds the client-go leader-election peer once per source version into the cache; returns its path. */
export async function buildLeaderElectionPeer(
  sourceDir: string,
  log: (line: string) => void,
): Promise<string> {
  const hash = createHash('sha256')
  for (const file of ['go.mod', 'go.sum', 'main.go']) hash.update(readFileSync(join(sourceDir, file)))
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kube-locks', 'bench')
  const binary = join(dir, `leader-election-${hash.digest('hex').slice(0, 12)}`)
  if (existsSync(binary)) return binary
  await mkdir(dir, { recursive: true })
  log('building the client-go leader-election peer…')
  await exec('go', ['build', '-o', binary, '.'], { cwd: sourceDir, maxBuffer: 16 * 2 ** 20 })
  return binary
}

export async function commandOutput(command: string, args: readonly string[], cwd?: string): Promise<string> {
  try {
    const { stdout, stderr } = await exec(command, args, { cwd })
    return (stdout || stderr).trim()
  } catch {
    return 'unknown'
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

/** Debian's redis-server, installed with apt-get if missing, on a free loopback port, without persistence. */
export async function startRedis(
  log: (line: string) => void,
): Promise<{ port: number; version: string; pid: number | undefined; stop(): Promise<void> }> {
  if ((await commandOutput('sh', ['-c', 'command -v redis-server'])) === 'unknown') {
    log('installing redis-server with apt-get…')
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    const install = ['install', '-y', '--no-install-recommends', 'redis-server']
    try {
      await exec('apt-get', install, { env })
    } catch {
      await exec('apt-get', ['update'], { env })
      await exec('apt-get', install, { env })
    }
  }
  const version = /v=(\S+)/.exec(await commandOutput('redis-server', ['--version']))?.[1] ?? 'unknown'
  const port = await freePort()
  const redis = new Peer('redis-server', 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
  ])
  const deadline = performance.now() + 20_000
  while ((await commandOutput('redis-cli', ['-p', String(port), 'ping'])) !== 'PONG') {
    if (performance.now() > deadline || !redis.alive) throw new Error('redis-server did not start')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { port, version, pid: redis.pid, stop: () => redis.stop(5_000, 'SIGTERM') }
}
