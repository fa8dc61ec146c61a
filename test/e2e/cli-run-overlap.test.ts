/**
 * `locks run` never lets its command overlap the next holder's: a command that ignores SIGTERM has its
 * whole process group killed before anyone else can take the lock, whether the lock simply ran out
 * (no --renew) or its renewals could not reach the API server (a blackhole between the CLI and it).
 * The next holder's own command checks, the moment it starts, that nothing of the first group runs.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { leaseNameFor } from '../../sdk/internal.ts'
import { TcpProxy } from '../faults/tcp-proxy.ts'
import { CliProcess } from './cli-helpers.ts'
import { adminKubeConfig, apiRequest, createNamespace, kubeconfigPath, waitFor } from './support.ts'

let namespace: string
let dir: string
let proxy: TcpProxy | undefined
/** Process groups of first holders, killed after each test whatever happened to them. */
const groups: number[] = []

beforeEach(async () => {
  namespace = await createNamespace('cli-run-overlap')
  dir = mkdtempSync(join(tmpdir(), 'locks-run-overlap-'))
})

afterEach(async () => {
  for (const group of groups.splice(0)) {
    try {
      process.kill(-group, 'SIGKILL')
    } catch {
      // Already gone, as it should be.
    }
  }
  await proxy?.close()
  proxy = undefined
  rmSync(dir, { recursive: true, force: true })
})

// The first holder's command: a shell that ignores SIGTERM (and so does its sleep), writing its process
// group id (a new session: its own pid) once the trap is set.
const STUBBORN = 'trap "" TERM; echo $$ > "$1.tmp" && mv "$1.tmp" "$1"; sleep 60'

// The next holder's command: lists the processes of that group that still run (zombies do not).
const CHECK = `
const fs = require('node:fs')
const group = Number(fs.readFileSync(process.argv[1], 'utf8'))
const alive = []
for (const entry of fs.readdirSync('/proc')) {
  if (!/^[0-9]+$/.test(entry)) continue
  let stat
  try { stat = fs.readFileSync('/proc/' + entry + '/stat', 'utf8') } catch { continue }
  const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  if (Number(pgrp) === group && state !== 'Z') alive.push(Number(entry) + ' ' + state)
}
fs.writeFileSync(process.argv[2], JSON.stringify(alive))
`

/** Pids of the group's processes that still run (the same rule as CHECK, in this process). */
function running(group: number): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (Number(pgrp) === group && state !== 'Z') found.push(Number(entry))
    } catch {
      // Gone while listing.
    }
  }
  return found
}

async function firstHolder(kubeconfig?: string, extra: readonly string[] = []) {
  const pidfile = join(dir, 'first.pid')
  const first = new CliProcess(
    ['run', 'job', '-n', namespace, '--expires', '5', ...extra, '--', 'sh', '-c', STUBBORN, 'sh', pidfile],
    kubeconfig === undefined ? {} : { kubeconfig },
  )
  await waitFor('the first command to start', () => existsSync(pidfile) || first.child.exitCode !== null, {
    timeoutMs: 15_000,
  })
  expect(first.child.exitCode, first.stderr).toBeNull()
  const group = Number(readFileSync(pidfile, 'utf8'))
  groups.push(group)
  expect(running(group).length).toBeGreaterThan(0)
  return { first, pidfile, group }
}

function secondHolder(pidfile: string) {
  const report = join(dir, 'second.json')
  const second = new CliProcess([
    'run',
    'job',
    '-n',
    namespace,
    '--expires',
    '5',
    '--timeout',
    '40',
    '--',
    process.execPath,
    '-e',
    CHECK,
    pidfile,
    report,
  ])
  return { second, report }
}

describe('locks run: the next holder never runs beside a command that ignores SIGTERM', () => {
  it('when the lock runs out (no --renew)', async () => {
    const { first, pidfile, group } = await firstHolder()
    const { second, report } = secondHolder(pidfile)
    const result = await second.done
    expect(result.code, result.stderr).toBe(0)
    expect(
      JSON.parse(readFileSync(report, 'utf8')),
      `group ${group} still ran when the next holder started; first said: ${first.stderr}`,
    ).toEqual([])
    const ended = await first.done
    expect(ended.code).toBe(76)
  })

  it('when renewals cannot reach the API server (--renew, blackhole)', async () => {
    const server = new URL(adminKubeConfig().getCurrentCluster()?.server ?? '')
    proxy = await TcpProxy.start({ host: server.hostname, port: Number(server.port) })
    const proxied = proxy.kubeconfigFor(kubeconfigPath(), join(dir, 'kubeconfig'))
    const { first, pidfile, group } = await firstHolder(proxied, ['--renew'])
    // Renewing through the proxy: the lease changes while the first command runs.
    const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${leaseNameFor('job')}`
    const acquired = (await apiRequest('GET', path)).body.metadata?.resourceVersion
    await waitFor(
      'the first holder to renew through the proxy',
      async () => (await apiRequest('GET', path)).body.metadata?.resourceVersion !== acquired,
      { timeoutMs: 10_000 },
    )
    const { second, report } = secondHolder(pidfile)
    proxy.mode = 'blackhole'
    const result = await second.done
    expect(result.code, result.stderr).toBe(0)
    expect(
      JSON.parse(readFileSync(report, 'utf8')),
      `group ${group} still ran when the next holder started; first said: ${first.stderr}`,
    ).toEqual([])
    expect(first.stderr).toMatch(/is lost: /)
  })
})
