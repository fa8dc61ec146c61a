// The chart and the plain manifests on the real API server: they install, pass server-side
// validation and Pod Security admission, and their RBAC grants exactly what each party needs.
// There is no kubelet, so nothing is waited on to run; the API objects are the subject.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { ApiException, AuthorizationV1Api, CoreV1Api, loadAllYaml, type V1Pod } from '@kubernetes/client-node'
import { describe, expect, inject, it, onTestFinished } from 'vitest'
import {
  CHART_DIR,
  MANIFEST_NAMESPACE,
  MANIFEST_PATH,
  TEMPLATE_KUBE_VERSION,
} from '../../hack/render-manifests.ts'
import { adminKubeConfig, type CommandResult, createNamespace, helm, kubectl } from './support.ts'

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field
type Manifest = any

function ok(result: CommandResult, what: string): string {
  expect(result.code, `${what}:\n${result.stdout}\n${result.stderr}`).toBe(0)
  return result.stdout
}

/** `helm install` into `namespace` (no --wait: no pod ever runs here), uninstalled after the test. */
async function install(
  namespace: string,
  args: readonly string[] = [],
): Promise<{ release: string; notes: string }> {
  const release = `kl-${randomBytes(3).toString('hex')}`
  const notes = ok(
    await helm(['install', release, CHART_DIR, '--namespace', namespace, ...args]),
    'helm install',
  )
  onTestFinished(async () => {
    ok(await helm(['uninstall', release, '--namespace', namespace]), 'helm uninstall')
  })
  return { release, notes }
}

interface Access {
  readonly verb: string
  readonly resource: string
  readonly group?: string
  /** Omitted: across all namespaces. */
  readonly namespace?: string
}

/** Whether a service account may do something, as the API server's authorizer decides it. */
async function can(serviceAccount: string, access: Access): Promise<boolean> {
  const [namespace, name] = serviceAccount.split('/')
  const api = adminKubeConfig().makeApiClient(AuthorizationV1Api)
  const review = await api.createSubjectAccessReview({
    body: {
      spec: {
        user: `system:serviceaccount:${namespace}:${name}`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
        resourceAttributes: {
          verb: access.verb,
          resource: access.resource,
          group: access.group ?? '',
          ...(access.namespace ? { namespace: access.namespace } : {}),
        },
      },
    },
  })
  return review.status?.allowed === true
}

const LEASES = { resource: 'leases', group: 'coordination.k8s.io' }
const EVENTS = { resource: 'events', group: '' }
const NEW_EVENTS = { resource: 'events', group: 'events.k8s.io' }
const SECRETS = { resource: 'secrets', group: '' }

/** Checks every access in `table` at once and reports all mismatches together. */
async function expectAccess(serviceAccount: string, table: ReadonlyArray<readonly [Access, boolean]>) {
  const actual = await Promise.all(table.map(([access]) => can(serviceAccount, access)))
  const describe = ([access, allowed]: readonly [Access, boolean]) =>
    `${allowed ? 'can' : 'cannot'} ${access.verb} ${access.resource}.${access.group || 'core'} in ${access.namespace ?? 'all namespaces'}`
  expect(
    table.map((row, index) => `${serviceAccount} ${describe([row[0], actual[index] ?? false])}`),
  ).toEqual(table.map((row) => `${serviceAccount} ${describe(row)}`))
}

function verbs(kind: { resource: string; group: string }, namespace: string | undefined, names: string[]) {
  return names.map((verb) => ({ verb, ...kind, ...(namespace ? { namespace } : {}) }))
}

describe('helm install on the real API server', () => {
  it('creates the controller, its RBAC, the client role, Service and PodDisruptionBudget', async () => {
    const namespace = await createNamespace('install')
    const { release, notes } = await install(namespace)
    expect(notes).toContain(`--clusterrole=${release}-kube-locks-client`)
    expect(notes).toContain('npm install -g kube-locks')
    expect(notes).toContain(`helm test ${release} -n ${namespace}`)

    const name = `${release}-kube-locks-controller`
    const objects = [
      ['deployment', name],
      ['serviceaccount', name],
      ['service', name],
      ['poddisruptionbudget', name],
      ['role', `${name}-leader-election`],
      ['rolebinding', `${name}-leader-election`],
    ]
    for (const [kind, objectName] of objects) {
      ok(
        await kubectl(['get', '-n', namespace, `${kind}/${objectName}`, '-o', 'name']),
        `get ${kind}/${objectName}`,
      )
    }
    for (const [kind, objectName] of [
      ['clusterrole', name],
      ['clusterrolebinding', name],
      ['clusterrole', `${release}-kube-locks-client`],
    ]) {
      ok(await kubectl(['get', `${kind}/${objectName}`, '-o', 'name']), `get ${kind}/${objectName}`)
    }

    const deployment = JSON.parse(
      ok(await kubectl(['get', '-n', namespace, `deployment/${name}`, '-o', 'json']), 'get'),
    )
    expect(deployment.spec.replicas).toBe(2)
    expect(deployment.spec.template.spec.containers[0].securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    })
    const status = ok(await helm(['status', release, '--namespace', namespace, '-o', 'json']), 'helm status')
    expect(JSON.parse(status).info.status).toBe('deployed')
  })

  // No kubelet runs here, so the test Pod never starts and `helm test` cannot pass: what this
  // shows is that `helm test` creates its Pod and the API server admits it under the restricted
  // Pod Security Standard. install-chart.test.ts runs the Pod's script against a stand-in.
  it('has `helm test` create a Pod that the restricted Pod Security Standard admits', async () => {
    const namespace = await createNamespace('install')
    ok(
      await kubectl(['label', 'namespace', namespace, 'pod-security.kubernetes.io/enforce=restricted']),
      'label the namespace',
    )
    const { release } = await install(namespace, ['--set', 'tests.timeoutSeconds=5'])
    const tested = await helm(['test', release, '--namespace', namespace, '--timeout', '3s'])
    expect(tested.code, 'no kubelet runs the test Pod, so helm test times out').not.toBe(0)
    const pod = JSON.parse(
      ok(
        await kubectl(['get', '-n', namespace, `pod/${release}-kube-locks-controller-test`, '-o', 'json']),
        'get the test Pod',
      ),
    )
    expect(pod.metadata.annotations['helm.sh/hook']).toBe('test')
    expect(pod.status.phase).toBe('Pending')
    expect(pod.spec.containers[0].env).toContainEqual({
      name: 'CONTROLLER_URL',
      value: `http://${release}-kube-locks-controller.${namespace}.svc:8080`,
    })
  })

  it('lets the cluster-wide controller manage leases everywhere, create only its own, and read no secrets', async () => {
    const [namespace, elsewhere] = await Promise.all([createNamespace('install'), createNamespace('other')])
    const { release } = await install(namespace)
    const controller = `${namespace}/${release}-kube-locks-controller`
    await expectAccess(controller, [
      ...verbs(LEASES, elsewhere, ['get', 'list', 'watch', 'update', 'delete']).map(
        (a) => [a, true] as const,
      ),
      ...verbs(LEASES, undefined, ['list', 'watch']).map((a) => [a, true] as const),
      ...verbs(EVENTS, elsewhere, ['create', 'patch']).map((a) => [a, true] as const),
      ...verbs(NEW_EVENTS, elsewhere, ['create', 'patch']).map((a) => [a, true] as const),
      // Its own leader-election lock.
      ...verbs(LEASES, namespace, ['get', 'list', 'watch', 'create', 'update']).map(
        (a) => [a, true] as const,
      ),
      // Locks are the applications' to create, not the controller's.
      [{ verb: 'create', ...LEASES, namespace: elsewhere }, false],
      [{ verb: 'patch', ...LEASES, namespace: elsewhere }, false],
      [{ verb: 'deletecollection', ...LEASES, namespace: elsewhere }, false],
      ...verbs(SECRETS, namespace, ['get', 'list', 'watch']).map((a) => [a, false] as const),
      ...verbs(SECRETS, undefined, ['get', 'list', 'watch']).map((a) => [a, false] as const),
      [{ verb: 'list', resource: 'configmaps', group: '', namespace }, false],
      [{ verb: 'delete', resource: 'pods', group: '', namespace: elsewhere }, false],
    ])
  })

  it('confines a controller given namespaces to them: no lease access anywhere else', async () => {
    const [namespace, shop, billing, outside] = await Promise.all([
      createNamespace('install'),
      createNamespace('shop'),
      createNamespace('billing'),
      createNamespace('outside'),
    ])
    const { release } = await install(namespace, ['--set', `controller.namespaces={${shop},${billing}}`])
    const name = `${release}-kube-locks-controller`
    for (const watched of [shop, billing]) {
      ok(
        await kubectl(['get', '-n', watched, `role/${name}`, `rolebinding/${name}`, '-o', 'name']),
        'get role',
      )
    }
    expect((await kubectl(['get', `clusterrolebinding/${name}`])).code, 'no ClusterRoleBinding').not.toBe(0)

    const controller = `${namespace}/${name}`
    await expectAccess(controller, [
      ...[shop, billing].flatMap((watched) =>
        [
          ...verbs(LEASES, watched, ['get', 'list', 'watch', 'update', 'delete']),
          ...verbs(EVENTS, watched, ['create', 'patch']),
          ...verbs(NEW_EVENTS, watched, ['create', 'patch']),
        ].map((a) => [a, true] as const),
      ),
      [{ verb: 'create', ...LEASES, namespace: shop }, false],
      ...verbs(LEASES, namespace, ['get', 'list', 'watch', 'create', 'update']).map(
        (a) => [a, true] as const,
      ),
      ...verbs(LEASES, outside, ['get', 'list', 'watch', 'update', 'delete']).map((a) => [a, false] as const),
      ...verbs(LEASES, 'kube-node-lease', ['get', 'update', 'delete']).map((a) => [a, false] as const),
      ...verbs(LEASES, 'kube-system', ['get', 'update', 'delete']).map((a) => [a, false] as const),
      ...verbs(LEASES, undefined, ['list', 'watch']).map((a) => [a, false] as const),
      [{ verb: 'create', ...EVENTS, namespace: outside }, false],
      ...verbs(SECRETS, shop, ['get', 'list']).map((a) => [a, false] as const),
    ])
  })

  it('gives an application bound to the client role locks in its own namespace only', async () => {
    const [namespace, app, neighbour] = await Promise.all([
      createNamespace('install'),
      createNamespace('app'),
      createNamespace('neighbour'),
    ])
    const { release } = await install(namespace)
    ok(await kubectl(['create', 'serviceaccount', 'worker', '-n', app]), 'create serviceaccount')
    ok(
      await kubectl([
        'create',
        'rolebinding',
        'worker-locks',
        '-n',
        app,
        `--clusterrole=${release}-kube-locks-client`,
        `--serviceaccount=${app}:worker`,
      ]),
      'create rolebinding',
    )
    const lockVerbs = ['get', 'list', 'watch', 'create', 'update', 'delete']
    await expectAccess(`${app}/worker`, [
      ...verbs(LEASES, app, lockVerbs).map((a) => [a, true] as const),
      ...verbs(LEASES, neighbour, lockVerbs).map((a) => [a, false] as const),
      ...verbs(LEASES, undefined, ['list']).map((a) => [a, false] as const),
      ...verbs(SECRETS, app, ['get', 'list']).map((a) => [a, false] as const),
    ])
  })
})

describe('plain manifests on the real API server', () => {
  it('install the default configuration with kubectl apply, and pass server-side validation', async () => {
    // The folder, as a user would apply it.
    const file = dirname(MANIFEST_PATH)
    // A dry run cannot create the namespace its other objects go into, so the real apply
    // comes first; applying again is then validated against the objects it made.
    const applied = ok(await kubectl(['apply', '-f', file]), 'kubectl apply')
    expect(applied).toContain(`namespace/${MANIFEST_NAMESPACE}`)
    if (!inject('localControlPlane')) {
      onTestFinished(async () => {
        await kubectl(['delete', '-f', file, '--ignore-not-found', '--wait=false'])
      })
    }
    const dryRun = await kubectl(['apply', '--dry-run=server', '-f', file])
    ok(dryRun, 'kubectl apply --dry-run=server')
    expect(dryRun.stderr).not.toMatch(/warning/i)
    for (const object of [
      'deployment/kube-locks-controller',
      'serviceaccount/kube-locks-controller',
      'service/kube-locks-controller',
      'poddisruptionbudget/kube-locks-controller',
      'role/kube-locks-controller-leader-election',
    ]) {
      ok(await kubectl(['get', '-n', MANIFEST_NAMESPACE, object, '-o', 'name']), `get ${object}`)
    }
    ok(
      await kubectl(['get', 'clusterrole/kube-locks-client', '-o', 'name']),
      'get clusterrole/kube-locks-client',
    )
    const ns = JSON.parse(
      ok(await kubectl(['get', `namespace/${MANIFEST_NAMESPACE}`, '-o', 'json']), 'get ns'),
    )
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted')
  })
})

describe('Pod Security admission', () => {
  async function restrictedNamespace(): Promise<string> {
    const namespace = await createNamespace('restricted')
    ok(
      await kubectl([
        'label',
        'namespace',
        namespace,
        'pod-security.kubernetes.io/enforce=restricted',
        'pod-security.kubernetes.io/warn=restricted',
      ]),
      'label namespace',
    )
    // Clusters that check service accounts at admission want the pod's to exist.
    ok(await kubectl(['create', 'serviceaccount', 'kube-locks-controller', '-n', namespace]), 'create sa')
    return namespace
  }

  async function renderDeployment(namespace: string, args: readonly string[] = []): Promise<string> {
    const rendered = await helm([
      'template',
      'kube-locks',
      CHART_DIR,
      '--namespace',
      namespace,
      '--kube-version',
      TEMPLATE_KUBE_VERSION,
      '--show-only',
      'templates/deployment.yaml',
      ...args,
    ])
    return ok(rendered, 'helm template')
  }

  /** The Deployment's pod template as a Pod, created with dryRun=All. */
  async function admitPod(namespace: string, args: readonly string[] = []) {
    const [deployment]: Manifest[] = loadAllYaml(await renderDeployment(namespace, args))
    const template = deployment.spec.template
    expect(template.spec.serviceAccountName).toBe('kube-locks-controller')
    const pod: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'kube-locks-controller', namespace, labels: template.metadata.labels },
      spec: template.spec,
    }
    const core = adminKubeConfig().makeApiClient(CoreV1Api)
    try {
      await core.createNamespacedPod({ namespace, body: pod, dryRun: 'All' })
      return { allowed: true, message: '' }
    } catch (error) {
      if (error instanceof ApiException && error.code === 403) {
        return { allowed: false, message: String(JSON.parse(String(error.body)).message) }
      }
      throw error
    }
  }

  async function applyDeployment(namespace: string, args: readonly string[] = []): Promise<CommandResult> {
    const dir = await mkdtemp(join(tmpdir(), 'kube-locks-psa-'))
    onTestFinished(() => rm(dir, { recursive: true, force: true }))
    const path = join(dir, 'deployment.yaml')
    await writeFile(path, await renderDeployment(namespace, args))
    return kubectl(['apply', '--dry-run=server', '-f', path])
  }

  it('admits the controller pod in a namespace that enforces the restricted standard', async () => {
    const namespace = await restrictedNamespace()
    expect(await admitPod(namespace)).toEqual({ allowed: true, message: '' })
  })

  it('rejects the pod once its security context is loosened, so the namespace really enforces', async () => {
    const namespace = await restrictedNamespace()
    const verdict = await admitPod(namespace, [
      '--set',
      'containerSecurityContext.allowPrivilegeEscalation=true',
    ])
    expect(verdict.allowed).toBe(false)
    expect(verdict.message).toMatch(/violates PodSecurity "restricted/)
  })

  it('draws no Pod Security warning for the Deployment, and one for a loosened Deployment', async () => {
    const namespace = await restrictedNamespace()
    const clean = await applyDeployment(namespace)
    ok(clean, 'kubectl apply --dry-run=server deployment')
    expect(clean.stderr).not.toMatch(/would violate PodSecurity/)
    const loosened = await applyDeployment(namespace, ['--set', 'podSecurityContext.runAsNonRoot=false'])
    ok(loosened, 'kubectl apply --dry-run=server loosened deployment')
    expect(loosened.stderr).toMatch(/would violate PodSecurity "restricted/)
  })
})
