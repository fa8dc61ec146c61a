// The Helm chart as rendered: lint, defaults, values validation, the committed plain manifests.
// Nothing here needs the API server; install-cluster.test.ts puts the same objects on it.
import { readFile } from 'node:fs/promises'
import { loadYaml } from '@kubernetes/client-node'
import { describe, expect, inject, it } from 'vitest'
import { CHART_DIR, MANIFEST_PATH, renderManifests } from '../../hack/render-manifests.ts'
import { type Manifest, template, templateError, templateTests } from './chart.ts'
import { helm } from './support.ts'

function find(docs: Manifest[], kind: string, name?: string, namespace?: string): Manifest {
  const found = docs.filter(
    (doc) =>
      doc.kind === kind &&
      (name === undefined || doc.metadata.name === name) &&
      (namespace === undefined || doc.metadata.namespace === namespace),
  )
  expect(found, `exactly one ${kind} ${namespace ?? ''}/${name ?? '*'}`).toHaveLength(1)
  return found[0]
}

function kinds(docs: Manifest[]): string[] {
  return docs.map((doc) => `${doc.kind}/${doc.metadata.namespace ?? ''}/${doc.metadata.name}`).sort()
}

describe('helm chart', () => {
  it('passes helm lint --strict, with the defaults and with every optional part switched on', async () => {
    const defaults = await helm(['lint', '--strict', CHART_DIR])
    expect(defaults.code, defaults.stdout + defaults.stderr).toBe(0)
    const everything = await helm([
      'lint',
      '--strict',
      CHART_DIR,
      '--set',
      'metrics.serviceMonitor.enabled=true,rbac.clientRole.aggregateToEdit=true,podAntiAffinity=hard',
      '--set',
      'controller.namespaces={shop,billing}',
    ])
    expect(everything.code, everything.stdout + everything.stderr).toBe(0)
  })

  it('renders the controller, its RBAC split by concern, the client role, Service and PDB by default', async () => {
    const docs = await template()
    expect(kinds(docs)).toEqual([
      'ClusterRole//locks-kube-locks-client',
      'ClusterRole//locks-kube-locks-controller',
      'ClusterRoleBinding//locks-kube-locks-controller',
      'Deployment/locks-system/locks-kube-locks-controller',
      'PodDisruptionBudget/locks-system/locks-kube-locks-controller',
      'Role/locks-system/locks-kube-locks-controller-leader-election',
      'RoleBinding/locks-system/locks-kube-locks-controller-leader-election',
      'Service/locks-system/locks-kube-locks-controller',
      'ServiceAccount/locks-system/locks-kube-locks-controller',
    ])

    const controller = find(docs, 'ClusterRole', 'locks-kube-locks-controller')
    expect(controller.rules).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        verbs: ['get', 'list', 'watch', 'update', 'delete'],
      },
      { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
      { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
    ])
    const client = find(docs, 'ClusterRole', 'locks-kube-locks-client')
    expect(client.rules).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'],
      },
    ])
    expect(client.metadata.labels['rbac.authorization.k8s.io/aggregate-to-edit']).toBeUndefined()
    const binding = find(docs, 'ClusterRoleBinding')
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'locks-kube-locks-controller', namespace: 'locks-system' },
    ])
    expect(find(docs, 'PodDisruptionBudget').spec).toMatchObject({ minAvailable: 1 })
  })

  it('runs two replicas with the downward-API identity, probes, resources and a restricted security context', async () => {
    const deployment = find(await template(), 'Deployment')
    expect(deployment.spec.replicas).toBe(2)
    const pod = deployment.spec.template.spec
    expect(pod.serviceAccountName).toBe('locks-kube-locks-controller')
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    })
    expect(pod.containers).toHaveLength(1)
    const [container] = pod.containers
    expect(container.image).toBe('ghcr.io/kube-locks/kube-locks-controller:0.1.0')
    // --retention, --grace and --leader-election-expires are left to the controller's own defaults.
    expect(container.args).toEqual([
      '--listen=:8080',
      '--log-level=info',
      '--leader-election-namespace=locks-system',
      '--leader-election-name=locks-kube-locks-controller',
    ])
    const env = Object.fromEntries(
      container.env.map((e: Manifest) => [e.name, e.valueFrom?.fieldRef?.fieldPath ?? e.value]),
    )
    expect(env).toEqual({
      POD_NAME: 'metadata.name',
      POD_NAMESPACE: 'metadata.namespace',
      NODE_NAME: 'spec.nodeName',
    })
    expect(container.ports).toEqual([{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }])
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' })
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' })
    expect(container.resources.requests).toMatchObject({ cpu: '20m', memory: '160Mi' })
    expect(container.resources.limits).toMatchObject({ memory: '384Mi' })
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    })
    expect(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution).toHaveLength(1)
  })

  it('grants lease access per listed namespace, and nothing cluster-wide, when namespaces are given', async () => {
    const docs = await template(['--set', 'controller.namespaces={shop,billing}'])
    expect(docs.filter((doc) => doc.kind === 'ClusterRoleBinding')).toEqual([])
    expect(
      docs.filter((doc) => doc.kind === 'ClusterRole').map((doc) => doc.metadata.name),
      'only the client role stays cluster-scoped',
    ).toEqual(['locks-kube-locks-client'])
    for (const namespace of ['shop', 'billing']) {
      const role = find(docs, 'Role', 'locks-kube-locks-controller', namespace)
      expect(role.rules[0]).toEqual({
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        verbs: ['get', 'list', 'watch', 'update', 'delete'],
      })
      const binding = find(docs, 'RoleBinding', 'locks-kube-locks-controller', namespace)
      expect(binding.roleRef).toEqual({
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Role',
        name: 'locks-kube-locks-controller',
      })
    }
    find(docs, 'Role', 'locks-kube-locks-controller-leader-election', 'locks-system')
    expect(find(docs, 'Deployment').spec.template.spec.containers[0].args[0]).toBe(
      '--namespaces=shop,billing',
    )
  })

  it('renders the ServiceMonitor only when it is enabled', async () => {
    expect((await template()).filter((doc) => doc.kind === 'ServiceMonitor')).toEqual([])
    const docs = await template([
      '--set',
      'metrics.serviceMonitor.enabled=true,metrics.serviceMonitor.labels.release=prometheus',
    ])
    const monitor = find(docs, 'ServiceMonitor', 'locks-kube-locks-controller', 'locks-system')
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1')
    expect(monitor.metadata.labels.release).toBe('prometheus')
    expect(monitor.spec.endpoints).toEqual([
      { port: 'http-metrics', path: '/metrics', interval: '30s', scrapeTimeout: '10s', honorLabels: false },
    ])
    const service = find(docs, 'Service')
    expect(service.spec.ports[0].name).toBe('http-metrics')
    expect(monitor.spec.selector.matchLabels).toEqual(service.spec.selector)
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) {
      expect(service.metadata.labels[key], `the Service carries the selected label ${key}`).toBe(value)
    }
  })

  it('takes the image by digest, extra arguments, a fixed client role name and aggregation into edit', async () => {
    const digest = `sha256:${'ab'.repeat(32)}`
    const docs = await template([
      '--set',
      `image.repository=registry.example.com/locks,image.tag=1.2.3,image.digest=${digest}`,
      '--set',
      'rbac.clientRole.name=kube-locks-client,controller.extraArgs={--log-level=debug}',
    ])
    const container = find(docs, 'Deployment').spec.template.spec.containers[0]
    expect(container.image).toBe(`registry.example.com/locks:1.2.3@${digest}`)
    expect(container.args.at(-1)).toBe('--log-level=debug')
    find(docs, 'ClusterRole', 'kube-locks-client')

    const aggregated = find(
      await template(['--set', 'rbac.clientRole.aggregateToEdit=true']),
      'ClusterRole',
      'locks-kube-locks-client',
    )
    expect(aggregated.metadata.labels).toMatchObject({
      'rbac.authorization.k8s.io/aggregate-to-edit': 'true',
      'rbac.authorization.k8s.io/aggregate-to-admin': 'true',
    })
  })

  it('rejects values the schema does not know or does not allow', async () => {
    expect(await templateError(['--set', 'replicas=3'])).toMatch(
      /additional properties? 'replicas' not allowed/i,
    )
    expect(await templateError(['--set', 'controller.retention=60'])).toMatch(/retention/)
    expect(await templateError(['--set', 'controller.logLevel=verbose'])).toMatch(/logLevel/)
    expect(await templateError(['--set', 'controller.namespaces={Shop}'])).toMatch(/namespaces/)
    expect(await templateError(['--set', 'replicaCount=0'])).toMatch(/replicaCount/)
  })

  it('fails with a clear message on contradictory values', async () => {
    expect(await templateError(['--set', 'serviceAccount.create=false'])).toContain(
      'serviceAccount.create is false, so serviceAccount.name must name an existing ServiceAccount',
    )
    expect(
      await templateError(['--set', 'metrics.serviceMonitor.enabled=true,metrics.service.enabled=false']),
    ).toContain('the ServiceMonitor scrapes the metrics Service')
    expect(await templateError(['--set', 'podDisruptionBudget.maxUnavailable=1'])).toContain(
      'podDisruptionBudget.minAvailable (1) and podDisruptionBudget.maxUnavailable (1) are both set',
    )
    expect(await templateError(['--set', 'replicaCount=1'])).toContain(
      'podDisruptionBudget.minAvailable (1) is not below replicaCount (1)',
    )
    expect(
      await templateError([
        '--set',
        'affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey=zone',
      ]),
    ).toContain('set podAntiAffinity to none to use your own')

    // The same values made consistent render.
    await template(['--set', 'serviceAccount.create=false,serviceAccount.name=existing'])
    await template(['--set', 'replicaCount=1,podDisruptionBudget.enabled=false'])
    await template(['--set', 'podDisruptionBudget.minAvailable=,podDisruptionBudget.maxUnavailable=1'])
  })

  it('describes itself for Artifact Hub: home, sources, maintainers, icon, license and links', async () => {
    const result = await helm(['show', 'chart', CHART_DIR])
    expect(result.code, result.stderr).toBe(0)
    const chart: Manifest = loadYaml(result.stdout)
    const home = 'https://github.com/kube-locks/kube-locks'
    expect(chart.home).toBe(home)
    expect(chart.sources).toContain(home)
    expect(chart.maintainers.length).toBeGreaterThan(0)
    for (const maintainer of chart.maintainers) expect(maintainer.name).toBeTruthy()
    expect(chart.icon).toMatch(/^https:\/\//)
    expect(chart.annotations['artifacthub.io/license']).toBe('Apache-2.0')
    const links: Manifest[] = loadYaml(chart.annotations['artifacthub.io/links'])
    expect(links.map((link) => link.url)).toContain(home)
    const changes: Manifest[] = loadYaml(chart.annotations['artifacthub.io/changes'])
    for (const change of changes) {
      expect(['added', 'changed', 'deprecated', 'removed', 'fixed', 'security']).toContain(change.kind)
      expect(change.description).toBeTruthy()
    }
    const images: Manifest[] = loadYaml(chart.annotations['artifacthub.io/images'])
    expect(images.map((image) => image.image)).toContain(
      `ghcr.io/kube-locks/kube-locks-controller:${chart.appVersion}`,
    )
  })

  it('passes --retention, --grace and --leader-election-expires only when set, 0 included', async () => {
    const set = await template([
      '--set',
      'controller.retentionSeconds=60,controller.graceSeconds=0,controller.leaderElection.expiresSeconds=30',
    ])
    const args = find(set, 'Deployment').spec.template.spec.containers[0].args
    expect(args).toEqual([
      '--retention=60',
      '--grace=0',
      '--listen=:8080',
      '--log-level=info',
      '--leader-election-namespace=locks-system',
      '--leader-election-name=locks-kube-locks-controller',
      '--leader-election-expires=30',
    ])
    expect(await templateError(['--set', 'controller.graceSeconds=-1'])).toMatch(/graceSeconds/)
    expect(await templateError(['--set', 'controller.retentionSeconds=soon'])).toMatch(/retentionSeconds/)
  })

  it('keeps revisionHistoryLimit old ReplicaSets, 10 unless set', async () => {
    expect(find(await template(), 'Deployment').spec.revisionHistoryLimit).toBe(10)
    const docs = await template(['--set', 'revisionHistoryLimit=2'])
    expect(find(docs, 'Deployment').spec.revisionHistoryLimit).toBe(2)
    expect(await templateError(['--set', 'revisionHistoryLimit=-1'])).toMatch(/revisionHistoryLimit/)
  })

  it('puts every namespaced object, the controller identity and the leader election in namespaceOverride', async () => {
    const settings = [
      '--set',
      'namespaceOverride=locks-elsewhere,metrics.serviceMonitor.enabled=true,apiPriority.enabled=true',
    ]
    const docs = [...(await template(settings, '1.29.0')), ...(await templateTests(settings, '1.29.0'))]
    const namespaced = docs.filter((doc) => doc.metadata.namespace !== undefined)
    expect(namespaced.length).toBeGreaterThan(5)
    for (const doc of namespaced) {
      expect(doc.metadata.namespace, `${doc.kind}/${doc.metadata.name}`).toBe('locks-elsewhere')
    }
    for (const doc of docs.filter((doc) => doc.kind === 'ClusterRoleBinding' || doc.kind === 'RoleBinding')) {
      expect(doc.subjects[0].namespace, `${doc.kind}/${doc.metadata.name}`).toBe('locks-elsewhere')
    }
    const container = find(docs, 'Deployment').spec.template.spec.containers[0]
    expect(container.args).toContain('--leader-election-namespace=locks-elsewhere')
    const monitor = find(docs, 'ServiceMonitor')
    expect(monitor.spec.namespaceSelector.matchNames).toEqual(['locks-elsewhere'])
    const schema = find(docs, 'FlowSchema')
    expect(schema.spec.rules[0].subjects[0].serviceAccount.namespace).toBe('locks-elsewhere')
    // Namespaces listed for the controller keep their own Role and RoleBinding there.
    const confined = await template([
      '--set',
      'namespaceOverride=locks-elsewhere,controller.namespaces={shop}',
    ])
    find(confined, 'Role', 'locks-kube-locks-controller', 'shop')
    expect(await templateError(['--set', 'namespaceOverride=Not_A_Namespace'])).toMatch(/namespaceOverride/)
  })

  // The test control plane has no kubelet, so no Pod ever runs there: `helm test` itself cannot
  // pass. This checks the hook as rendered; install-cluster.test.ts has the API server admit it.
  it('renders a `helm test` Pod that asks the controller, through its Service, for /readyz and /metrics', async () => {
    const [pod, ...others] = await templateTests()
    expect(others).toEqual([])
    expect(pod.kind).toBe('Pod')
    expect(pod.metadata).toMatchObject({
      name: 'locks-kube-locks-controller-test',
      namespace: 'locks-system',
      annotations: { 'helm.sh/hook': 'test' },
    })
    expect(pod.spec.restartPolicy).toBe('Never')
    expect(pod.spec.automountServiceAccountToken).toBe(false)
    const [container] = pod.spec.containers
    expect(container.image).toBe('ghcr.io/kube-locks/kube-locks-controller:0.1.0')
    expect(container.command[0]).toBe('/nodejs/bin/node')
    const env = Object.fromEntries(container.env.map((e: Manifest) => [e.name, e.value]))
    const service = find(await template(), 'Service')
    expect(env.CONTROLLER_URL).toBe(
      `http://${service.metadata.name}.locks-system.svc:${service.spec.ports[0].port}`,
    )
    expect(container.args[0]).toContain('/readyz')
    expect(container.args[0]).toContain('kube_locks_leases')
    expect(container.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true })

    expect(await templateTests(['--set', 'tests.enabled=false'])).toEqual([])
    expect(await templateTests(['--set', 'metrics.service.enabled=false'])).toEqual([])
  })

  it('runs the `helm test` script against a stand-in controller: passes when ready, fails when not', async () => {
    const [pod] = await templateTests(['--set', 'tests.timeoutSeconds=1'])
    const script: string = pod.spec.containers[0].args[0]
    const { createServer } = await import('node:http')
    const { execFile } = await import('node:child_process')
    let ready = true
    const server = createServer((request, response) => {
      if (request.url === '/readyz') response.writeHead(ready ? 200 : 503).end(ready ? 'ok\n' : 'not ready\n')
      else if (request.url === '/metrics') response.writeHead(200).end('kube_locks_leases{namespace="a"} 1\n')
      else response.writeHead(404).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = server.address() as { port: number }
      const run = () =>
        new Promise<{ code: number; output: string }>((resolve) => {
          execFile(
            process.execPath,
            ['--input-type=module', '--eval', script],
            { env: { CONTROLLER_URL: `http://127.0.0.1:${port}`, TIMEOUT_SECONDS: '1' }, timeout: 20_000 },
            (error, stdout, stderr) =>
              resolve({ code: error ? Number(error.code) || 1 : 0, output: stdout + stderr }),
          )
        })
      const passed = await run()
      expect(passed, passed.output).toMatchObject({ code: 0 })
      ready = false
      const failed = await run()
      expect(failed.code, failed.output).not.toBe(0)
      expect(failed.output).toContain('/readyz answered 503')
    } finally {
      server.close()
    }
  })

  it('has committed plain manifests identical to what the chart renders (run `npm run manifests`)', async () => {
    const expected = await renderManifests(inject('helmPath'))
    const committed = await readFile(MANIFEST_PATH, 'utf8')
    expect(committed).toBe(expected)
  })
})
