// The controller, started with the arguments and environment of the Deployment that the chart
// installed and with its service account's own credentials, does its whole job: elects a leader,
// frees an expired lock with an Event, deletes it after the retention period. A missing
// permission in the chart's RBAC would stop one of those steps.
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { ControllerProcess, killControllers } from '../../controller/testing/controller-process.ts'
import { managedLease } from '../../controller/testing/leases.ts'
import { CHART_DIR } from '../../hack/render-manifests.ts'
import { createKubernetesLeaseStore } from '../../sdk/internal.ts'
import {
  adminKubeConfig,
  type CommandResult,
  createNamespace,
  helm,
  kubectl,
  serviceAccountKubeconfig,
  waitFor,
} from './support.ts'

function ok(result: CommandResult, what: string): string {
  expect(result.code, `${what}:\n${result.stdout}\n${result.stderr}`).toBe(0)
  return result.stdout
}

afterEach(async () => {
  await killControllers()
})

describe('the controller under the chart RBAC alone', () => {
  it.each([
    { scope: 'every namespace', listed: false },
    { scope: 'a listed namespace', listed: true },
  ])(
    'elects a leader, frees an expired lock with an Event and deletes it, watching $scope',
    async ({ listed }) => {
      const [system, app] = await Promise.all([createNamespace('install'), createNamespace('app')])
      const release = `kl-${randomBytes(3).toString('hex')}`
      ok(
        await helm([
          'install',
          release,
          CHART_DIR,
          '--namespace',
          system,
          '--set',
          'controller.retentionSeconds=1,controller.graceSeconds=0',
          ...(listed ? ['--set', `controller.namespaces={${app}}`] : []),
        ]),
        'helm install',
      )
      onTestFinished(async () => {
        ok(await helm(['uninstall', release, '--namespace', system]), 'helm uninstall')
      })

      const name = `${release}-kube-locks-controller`
      const deployment = JSON.parse(
        ok(await kubectl(['get', '-n', system, `deployment/${name}`, '-o', 'json']), 'get'),
      )
      const pod = deployment.spec.template.spec
      const container = pod.containers[0]
      const credentials = await serviceAccountKubeconfig(system, pod.serviceAccountName)
      // What the pod runs, with a free local port instead of :8080 and the account's token.
      const args = [
        ...container.args.map((arg: string) => (arg.startsWith('--listen=') ? '--listen=127.0.0.1:0' : arg)),
        `--kubeconfig=${credentials}`,
      ]
      const replica = new ControllerProcess(`${name}-7c9d8-abcde`, args, {
        POD_NAMESPACE: system,
        NODE_NAME: 'node-a',
      })

      // Each step within a deadline; on failure, what the controller logged says which permission was missing.
      const until = (what: string, check: () => Promise<boolean | undefined>) =>
        waitFor(what, check, { timeoutMs: 30_000 }).catch((error: unknown) => {
          throw new Error(`${String(error)}\n${replica.output()}`)
        })
      const store = createKubernetesLeaseStore(adminKubeConfig())
      onTestFinished(() => store.close?.())

      await until('/readyz to answer 200', async () => (await replica.get('/readyz')).status === 200)
      await until('the replica to hold its leader-election lock', async () =>
        (await store.get(system, name))?.holderIdentity?.startsWith(`${replica.name}_`),
      )
      await store.create(managedLease(app, 'nightly-export', { duration: 1 }))
      await until('the expired lock to be freed', async () => {
        const lease = await store.get(app, 'nightly-export')
        return lease === undefined || lease.holderIdentity === undefined
      })
      await until(
        'the free lease to be deleted',
        async () => (await store.get(app, 'nightly-export')) === undefined,
      )
      const events = JSON.parse(ok(await kubectl(['get', 'events', '-n', app, '-o', 'json']), 'get events'))
      const aboutLease = events.items.filter(
        (event: { involvedObject?: { kind?: string; name?: string } }) =>
          event.involvedObject?.kind === 'Lease' && event.involvedObject.name === 'nightly-export',
      )
      expect(aboutLease.length, 'an Event on the lease').toBeGreaterThan(0)

      const exit = await replica.stop('SIGTERM')
      expect(exit.code, replica.output()).toBe(0)
      expect(replica.output()).not.toMatch(/forbidden|PERMISSION_DENIED/i)
    },
  )
})
