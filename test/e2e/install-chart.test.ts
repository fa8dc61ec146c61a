// The Helm chart as rendered: lint, defaults, values validation, the committed plain manifests.
// Nothing here needs the API server; install-cluster.test.ts puts the same objects on it.
import { readFile } from 'node:fs/promises'
import { describe, expect, inject, it } from 'vitest'
import { CHART_DIR, MANIFEST_PATH, renderManifests } from '../../hack/render-manifests.ts'
import { type Manifest, template, templateError } from './chart.ts'
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
    expect(container.args).toEqual([
      '--retention=300',
      '--grace=2',
      '--listen=:8080',
      '--log-level=info',
      '--leader-election-namespace=locks-system',
      '--leader-election-name=locks-kube-locks-controller',
      '--leader-election-expires=15',
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
    expect(container.resources.requests).toMatchObject({ cpu: '20m', memory: '128Mi' })
    expect(container.resources.limits).toMatchObject({ memory: '256Mi' })
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

  it('has committed plain manifests identical to what the chart renders (run `npm run manifests`)', async () => {
    const expected = await renderManifests(inject('helmPath'))
    const committed = await readFile(MANIFEST_PATH, 'utf8')
    expect(committed).toBe(expected)
  })
})
