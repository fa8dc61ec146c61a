import { spawnSync } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { ControllerProcess, killControllers } from '../../controller/testing/controller-process.ts'
import { createNamespace, kubeconfigPath, serviceAccountKubeconfig, waitFor } from './support.ts'

afterEach(async () => {
  await killControllers()
})

const METRICS = [
  'kube_locks_leases',
  'kube_locks_expired_total',
  'kube_locks_reclaimed_total',
  'kube_locks_deleted_total',
  'kube_locks_reconcile_conflicts_total',
  'kube_locks_reconcile_errors_total',
  'kube_locks_reconcile_duration_seconds',
  'kube_locks_watch_restarts_total',
  'kube_locks_events_total',
  'kube_locks_events_dropped_total',
  'kube_locks_controller_leader',
  'kube_locks_controller_leader_transitions_total',
  'kube_locks_queue_depth',
  'process_resident_memory_bytes',
]

function run(args: readonly string[]) {
  return spawnSync(process.execPath, ['controller/main.ts', ...args], { encoding: 'utf8', timeout: 30_000 })
}

describe('controller observability', () => {
  it('serves /metrics, /healthz and /readyz, and logs JSON lines', async () => {
    const ns = await createNamespace('ctl-obs')
    // Configured through the environment, as the chart may do.
    const controller = new ControllerProcess('obs', ['--kubeconfig', kubeconfigPath()], {
      KUBE_LOCKS_NAMESPACES: ns,
      KUBE_LOCKS_LISTEN: '127.0.0.1:0',
      KUBE_LOCKS_LEADER_ELECTION_NAMESPACE: ns,
      KUBE_LOCKS_RETENTION: '42',
    })
    expect(await controller.waitForLog('controller starting')).toMatchObject({
      namespaces: ns,
      retentionSeconds: 42,
    })
    await waitFor(
      '/readyz to answer 200',
      async () => (await controller.get('/readyz')).status === 200 || undefined,
    )
    expect(await controller.get('/healthz')).toEqual({ status: 200, text: 'ok\n' })
    const response = await fetch(`${await controller.baseUrl()}/metrics`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toContain('text/plain')
    const text = await response.text()
    for (const name of METRICS) expect(text).toContain(`# TYPE ${name} `)
    await waitFor(
      'leadership',
      async () => (await controller.metric('kube_locks_controller_leader')) === 1 || undefined,
    )
    expect((await controller.get('/nope')).status).toBe(404)
    for (const line of controller.logs) {
      expect(line.level, JSON.stringify(line)).toMatch(/^(debug|info|warn|error)$/)
      expect(typeof line.time).toBe('string')
    }
  })

  it('is live but not ready while it cannot list leases, and says which permission is missing', async () => {
    const ns = await createNamespace('ctl-rbac')
    const kubeconfig = await serviceAccountKubeconfig(ns, 'no-rights')
    const controller = new ControllerProcess('rbac', [
      '--kubeconfig',
      kubeconfig,
      '--namespaces',
      ns,
      '--listen',
      '127.0.0.1:0',
      '--leader-election-namespace',
      ns,
    ])
    const failure = await controller.waitForLog('lease watch failed; retrying')
    expect(JSON.stringify(failure.error)).toMatch(/list.*leases\.coordination\.k8s\.io/)
    expect(await controller.get('/healthz')).toMatchObject({ status: 200 })
    expect(await controller.get('/readyz')).toEqual({
      status: 503,
      text: 'not ready: leases not listed yet\n',
    })
    expect(
      await controller.metric('kube_locks_watch_restarts_total', { reason: 'error' }),
    ).toBeGreaterThanOrEqual(1)
    const exit = await controller.stop('SIGTERM')
    expect(exit, controller.output()).toMatchObject({ code: 0 })
    expect(exit.ms).toBeLessThan(10_000)
  })

  it('documents every flag with its default in --help', () => {
    const help = run(['--help'])
    expect(help.status).toBe(0)
    for (const [flag, fallback] of [
      ['--namespaces', 'all namespaces'],
      ['--retention', '300'],
      ['--grace', '2'],
      ['--listen', '":8080"'],
      ['--log-level', '"info"'],
      ['--kubeconfig', 'like kubectl: $KUBECONFIG'],
      ['--leader-election-namespace', '$POD_NAMESPACE'],
      ['--leader-election-name', '"kube-locks-controller"'],
      ['--leader-election-expires', '15'],
    ]) {
      const line = help.stdout.split('\n').find((text) => text.trimStart().startsWith(`${flag} `)) ?? ''
      const block = help.stdout.slice(help.stdout.indexOf(line)).split(/\n\s{0,3}-/)[0] ?? ''
      expect(block, `${flag} in:\n${help.stdout}`).toContain(`default: ${fallback}`)
    }
    expect(help.stdout).toContain('KUBE_LOCKS_NAMESPACES')
  })

  it('refuses bad flags with a message naming the flag and what it expects', () => {
    const bad = run(['--retention', 'soon', '--kubeconfig', kubeconfigPath()])
    expect(bad.status).toBe(1)
    expect(bad.stderr).toContain('--retention')
    expect(bad.stderr).toContain('finite number of seconds')
    const namespaces = run(['--namespaces', 'Shop', '--kubeconfig', kubeconfigPath()])
    expect(namespaces.status).toBe(1)
    expect(namespaces.stderr).toContain('DNS-1123')
  })
})
