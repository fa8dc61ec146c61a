// The chart's opt-in API Priority and Fairness level, and the SDK under a real 429: the API server
// classifies the Lease requests of the listed subjects into the chart's FlowSchema and priority level
// (and nothing else of theirs), and a level that rejects when full answers 429 with Retry-After,
// which the store surfaces as a known outcome with `retryAfterMs`.
import { randomBytes } from 'node:crypto'
import { request as httpsRequest, type RequestOptions } from 'node:https'
import { KubeConfig } from '@kubernetes/client-node'
import { describe, expect, it, onTestFinished } from 'vitest'
import { CHART_DIR, TEMPLATE_KUBE_VERSION } from '../../hack/render-manifests.ts'
import { createKubernetesLeaseStore, LockUnavailableError } from '../../sdk/internal.ts'
import { templateError as chartError, type Manifest, template as renderChart } from './chart.ts'
import {
  adminKubeConfig,
  type CommandResult,
  createNamespace,
  helm,
  kubectl,
  serviceAccountKubeconfig,
  waitFor,
} from './support.ts'

const FLOW_CONTROL = new Set(['FlowSchema', 'PriorityLevelConfiguration'])
const SUPPORTED_KUBE_VERSION = '1.33.0'

function ok(result: CommandResult, what: string): string {
  expect(result.code, `${what}:\n${result.stdout}\n${result.stderr}`).toBe(0)
  return result.stdout
}

/** The chart as a supported Kubernetes version renders it. */
function template(args: readonly string[], kubeVersion = SUPPORTED_KUBE_VERSION): Promise<Manifest[]> {
  return renderChart(args, kubeVersion)
}

function templateError(args: readonly string[]): Promise<string> {
  return chartError(args, SUPPORTED_KUBE_VERSION)
}

const flowControl = (docs: Manifest[]) => docs.filter((doc) => FLOW_CONTROL.has(doc.kind))

/** The PriorityLevelConfiguration and the FlowSchema of a render, whatever order Helm put them in. */
function levelAndSchema(docs: Manifest[]): [Manifest, Manifest] {
  const objects = flowControl(docs)
  expect(objects).toHaveLength(2)
  const level = objects.find((doc) => doc.kind === 'PriorityLevelConfiguration')
  const schema = objects.find((doc) => doc.kind === 'FlowSchema')
  expect(level && schema, 'one PriorityLevelConfiguration and one FlowSchema').toBeTruthy()
  return [level, schema]
}

/** `helm install` into `namespace` (no --wait: no pod runs here), uninstalled after the test. */
async function install(namespace: string, args: readonly string[]): Promise<string> {
  const release = `kl-${randomBytes(3).toString('hex')}`
  ok(await helm(['install', release, CHART_DIR, '--namespace', namespace, ...args]), 'helm install')
  onTestFinished(async () => {
    ok(await helm(['uninstall', release, '--namespace', namespace]), 'helm uninstall')
  })
  return release
}

async function uid(kind: string, name: string): Promise<string> {
  const object = JSON.parse(ok(await kubectl(['get', kind, name, '-o', 'json']), `get ${kind}`))
  return object.metadata.uid
}

interface Classified {
  readonly status: number
  readonly flowSchemaUid: string | undefined
  readonly priorityLevelUid: string | undefined
}

/** A GET as the kubeconfig's user, with the API server's flow-control headers of the answer. */
async function classify(kubeconfigPath: string, path: string): Promise<Classified> {
  const config = new KubeConfig()
  config.loadFromFile(kubeconfigPath)
  const server = config.getCurrentCluster()?.server
  if (!server) throw new Error(`${kubeconfigPath} has no current cluster`)
  const options: RequestOptions = { method: 'GET', headers: { accept: 'application/json' } }
  await config.applyToHTTPSOptions(options)
  return new Promise((resolve, reject) => {
    const request = httpsRequest(`${server}${path}`, options, (response) => {
      response.resume()
      response.on('end', () => {
        const header = (name: string) => {
          const value = response.headers[name]
          return Array.isArray(value) ? value[0] : value
        }
        resolve({
          status: response.statusCode ?? 0,
          flowSchemaUid: header('x-kubernetes-pf-flowschema-uid'),
          priorityLevelUid: header('x-kubernetes-pf-prioritylevel-uid'),
        })
      })
      response.on('error', reject)
    })
    request.on('error', reject)
    request.end()
  })
}

/** Grants the service account what the chart's client role grants, in its own namespace. */
async function bindClientRole(namespace: string, serviceAccount: string, clusterRole: string): Promise<void> {
  ok(
    await kubectl([
      'create',
      'rolebinding',
      `${serviceAccount}-locks`,
      '-n',
      namespace,
      `--clusterrole=${clusterRole}`,
      `--serviceaccount=${namespace}:${serviceAccount}`,
    ]),
    'create rolebinding',
  )
}

describe('the chart renders an API priority level only when asked', () => {
  it('renders no flow-control objects by default', async () => {
    expect(flowControl(await template([]))).toEqual([])
    expect(flowControl(await template([], TEMPLATE_KUBE_VERSION))).toEqual([])
  })

  it('renders a Limited level and a FlowSchema for the Lease requests of the controller and the listed subjects', async () => {
    const [level, schema] = levelAndSchema(
      await template([
        '--set',
        'apiPriority.enabled=true',
        '--set',
        'apiPriority.serviceAccounts[0].namespace=shop,apiPriority.serviceAccounts[0].name=orders',
        '--set',
        'apiPriority.serviceAccounts[1].namespace=billing,apiPriority.serviceAccounts[1].name=*',
        '--set',
        'apiPriority.groups={system:serviceaccounts:batch},apiPriority.users={ci}',
      ]),
    )
    for (const object of [level, schema]) {
      expect(object.apiVersion).toBe('flowcontrol.apiserver.k8s.io/v1')
      expect(object.metadata.name).toBe('locks-kube-locks')
    }
    expect(level.metadata.labels['app.kubernetes.io/part-of']).toBe('kube-locks')
    expect(level.spec).toEqual({
      type: 'Limited',
      limited: {
        nominalConcurrencyShares: 10,
        lendablePercent: 0,
        limitResponse: { type: 'Queue', queuing: { queues: 16, handSize: 4, queueLengthLimit: 50 } },
      },
    })
    expect(schema.spec).toEqual({
      priorityLevelConfiguration: { name: 'locks-kube-locks' },
      matchingPrecedence: 180,
      distinguisherMethod: { type: 'ByUser' },
      rules: [
        {
          subjects: [
            {
              kind: 'ServiceAccount',
              serviceAccount: { namespace: 'locks-system', name: 'locks-kube-locks-controller' },
            },
            { kind: 'ServiceAccount', serviceAccount: { namespace: 'shop', name: 'orders' } },
            { kind: 'ServiceAccount', serviceAccount: { namespace: 'billing', name: '*' } },
            { kind: 'Group', group: { name: 'system:serviceaccounts:batch' } },
            { kind: 'User', user: { name: 'ci' } },
          ],
          resourceRules: [
            { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['*'], namespaces: ['*'] },
          ],
        },
      ],
    })
  })

  it('takes its tuning from the values, and speaks v1beta3 to Kubernetes before 1.29', async () => {
    const [level, schema] = levelAndSchema(
      await template(
        [
          '--set',
          'apiPriority.enabled=true,apiPriority.controller=false,apiPriority.groups={team}',
          '--set',
          'apiPriority.matchingPrecedence=500,apiPriority.nominalConcurrencyShares=3',
          '--set',
          'apiPriority.lendablePercent=50,apiPriority.limitResponse=Reject',
        ],
        TEMPLATE_KUBE_VERSION,
      ),
    )
    expect(level.apiVersion).toBe('flowcontrol.apiserver.k8s.io/v1beta3')
    expect(schema.apiVersion).toBe('flowcontrol.apiserver.k8s.io/v1beta3')
    expect(level.spec.limited).toEqual({
      nominalConcurrencyShares: 3,
      lendablePercent: 50,
      limitResponse: { type: 'Reject' },
    })
    expect(schema.spec.matchingPrecedence).toBe(500)
    expect(schema.spec.rules[0].subjects).toEqual([{ kind: 'Group', group: { name: 'team' } }])
  })

  it('passes helm lint --strict with the level switched on', async () => {
    const result = await helm([
      'lint',
      '--strict',
      CHART_DIR,
      '--kube-version',
      SUPPORTED_KUBE_VERSION,
      '--set',
      'apiPriority.enabled=true,apiPriority.groups={system:serviceaccounts:shop}',
    ])
    expect(result.code, result.stdout + result.stderr).toBe(0)
  })

  it('rejects values that the API server would, or that match no one', async () => {
    expect(await templateError(['--set', 'apiPriority.enabled=true,apiPriority.controller=false'])).toContain(
      'apiPriority.enabled is true but the FlowSchema would match no one',
    )
    expect(
      await templateError(['--set', 'apiPriority.enabled=true,apiPriority.queuing.handSize=17']),
    ).toContain('apiPriority.queuing.handSize (17) is larger than apiPriority.queuing.queues (16)')
    expect(await templateError(['--set', 'apiPriority.limitResponse=Drop'])).toMatch(/limitResponse/)
    expect(await templateError(['--set', 'apiPriority.matchingPrecedence=0'])).toMatch(/matchingPrecedence/)
    expect(await templateError(['--set', 'apiPriority.nominalConcurrencyShares=0'])).toMatch(
      /nominalConcurrencyShares/,
    )
    expect(
      await templateError([
        '--set',
        'apiPriority.serviceAccounts[0].namespace=Shop,apiPriority.serviceAccounts[0].name=a',
      ]),
    ).toMatch(/namespace/)
    expect(await templateError(['--set', 'apiPriority.priority=high'])).toMatch(
      /additional properties? 'priority' not allowed/i,
    )
  })
})

describe('the API priority level on the real API server', () => {
  it("classifies the Lease requests of the controller and the listed accounts into the chart's level, nothing else", async () => {
    const [system, app] = await Promise.all([createNamespace('apf-system'), createNamespace('apf-app')])
    const release = await install(system, [
      '--set',
      'apiPriority.enabled=true',
      '--set',
      `apiPriority.serviceAccounts[0].namespace=${app},apiPriority.serviceAccounts[0].name=orders`,
    ])
    const name = `${release}-kube-locks`
    const [schemaUid, levelUid] = await Promise.all([
      uid('flowschema', name),
      uid('prioritylevelconfiguration', name),
    ])
    const controller = await serviceAccountKubeconfig(system, `${release}-kube-locks-controller`)
    const orders = await serviceAccountKubeconfig(app, 'orders')
    const other = await serviceAccountKubeconfig(app, 'other')
    await Promise.all(
      ['orders', 'other'].map((account) => bindClientRole(app, account, `${release}-kube-locks-client`)),
    )
    const leases = `/apis/coordination.k8s.io/v1/namespaces/${app}/leases`
    const ours = { flowSchemaUid: schemaUid, priorityLevelUid: levelUid }

    // The API server takes up a new FlowSchema asynchronously (its configuration controller).
    const first = await waitFor(
      'the API server to classify by the new FlowSchema',
      async () => {
        const answer = await classify(orders, leases)
        return answer.flowSchemaUid === schemaUid ? answer : undefined
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    )
    expect(first).toEqual({ status: 200, ...ours })
    expect(await classify(orders, `${leases}/missing`)).toEqual({ status: 404, ...ours })
    expect(await classify(controller, leases), 'the controller, in every namespace').toMatchObject({
      status: 200,
      ...ours,
    })
    expect(
      await classify(controller, `/apis/coordination.k8s.io/v1/namespaces/${system}/leases`),
      'the controller, in its own namespace',
    ).toMatchObject(ours)

    // Not an account the values list; not a Lease request.
    const unlisted = await classify(other, leases)
    expect(unlisted.status).toBe(200)
    expect(unlisted.flowSchemaUid).toBeDefined()
    expect(unlisted.flowSchemaUid).not.toBe(schemaUid)
    const events = await classify(controller, `/api/v1/namespaces/${app}/events`)
    expect(events.flowSchemaUid).toBeDefined()
    expect(events.flowSchemaUid).not.toBe(schemaUid)
    expect(events.priorityLevelUid).not.toBe(levelUid)
  })

  it('a level that rejects when full answers 429 with Retry-After; the store reports a known outcome and retryAfterMs', async () => {
    const app = await createNamespace('apf-flood')
    const release = await install(app, [
      '--set',
      'apiPriority.enabled=true,apiPriority.controller=false',
      '--set',
      `apiPriority.serviceAccounts[0].namespace=${app},apiPriority.serviceAccounts[0].name=flood`,
      '--set',
      'apiPriority.nominalConcurrencyShares=1,apiPriority.lendablePercent=0,apiPriority.limitResponse=Reject',
    ])
    const schemaUid = await uid('flowschema', `${release}-kube-locks`)
    const flood = await serviceAccountKubeconfig(app, 'flood')
    await bindClientRole(app, 'flood', `${release}-kube-locks-client`)
    const leases = `/apis/coordination.k8s.io/v1/namespaces/${app}/leases`
    await waitFor(
      'the API server to classify by the new FlowSchema',
      async () => (await classify(flood, leases)).flowSchemaUid === schemaUid,
      { timeoutMs: 30_000, intervalMs: 200 },
    )

    const config = new KubeConfig()
    config.loadFromFile(flood)
    const store = createKubernetesLeaseStore(config)
    onTestFinished(() => store.close?.())
    const admin = createKubernetesLeaseStore(adminKubeConfig())
    onTestFinished(() => admin.close?.())

    // One share of the server's concurrency is a seat or two: a burst of creates overflows it.
    const throttled: { name: string; error: LockUnavailableError }[] = []
    const created = new Set<string>()
    const deadline = performance.now() + 30_000
    for (
      let round = 0;
      (throttled.length === 0 || created.size === 0) && performance.now() < deadline;
      round++
    ) {
      await Promise.all(
        Array.from({ length: 200 }, async (_, index) => {
          const name = `burst-${round}-${index}`
          try {
            await store.create({
              namespace: app,
              name,
              holderIdentity: undefined,
              leaseDurationSeconds: 20,
              acquireTime: undefined,
              renewTime: undefined,
              leaseTransitions: undefined,
              labels: {},
              annotations: {},
            })
            created.add(name)
          } catch (error) {
            if (error instanceof LockUnavailableError && error.status === 429) throttled.push({ name, error })
            else throw error
          }
        }),
      )
    }
    expect(throttled.length, 'some creates of the burst were throttled').toBeGreaterThan(0)
    expect(created.size, 'and some got through').toBeGreaterThan(0)
    for (const { error } of throttled) {
      expect(error.outcomeUnknown).toBe(false)
      expect(error.retryAfterMs, 'the server says when to retry').toBeGreaterThan(0)
      expect(error.retryAfterMs).toBeLessThanOrEqual(60_000)
      expect(error.message).toContain('is throttling requests (429 Too Many Requests)')
    }
    // A 429 was never executed: no throttled create left a lease behind.
    const names = new Set((await admin.list(app)).items.map((lease) => lease.name))
    expect(throttled.filter(({ name }) => names.has(name))).toEqual([])
    expect([...created].filter((name) => !names.has(name))).toEqual([])
  })
})
