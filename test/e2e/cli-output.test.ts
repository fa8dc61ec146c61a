/**
 * `locks list`, `get` and `gc --dry-run` against the real API server, compared with golden files
 * (times, uids and resourceVersions normalised).
 */
import type { KubeConfig } from '@kubernetes/client-node'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  formatMicroTime,
  LOCK_NAME_ANNOTATION,
  leaseNameFor,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  NODE_ANNOTATION,
  POD_ANNOTATION,
  SERVICE_ANNOTATION,
} from '../../sdk/internal.ts'
import { expectGolden, locks, normalise } from './cli-helpers.ts'
import { adminKubeConfig, apiRequest, createNamespace } from './support.ts'

let namespace: string
let config: KubeConfig

async function createLease(
  name: string,
  spec: Record<string, unknown>,
  annotations: Record<string, string>,
  labels: Record<string, string> = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
): Promise<void> {
  const body = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, labels, annotations },
    spec,
  }
  const response = await apiRequest(
    'POST',
    `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
    body,
    config,
  )
  expect(response.status, JSON.stringify(response.body)).toBe(201)
}

beforeAll(async () => {
  config = adminKubeConfig()
  namespace = await createNamespace('cli-output')
  const ago = (seconds: number) => formatMicroTime(Date.now() - seconds * 1000)
  await createLease(
    'nightly-report',
    {
      holderIdentity: 'reports-7d9f_12_k3j9',
      leaseDurationSeconds: 3600,
      acquireTime: ago(60),
      renewTime: ago(5),
      leaseTransitions: 2,
    },
    {
      [LOCK_NAME_ANNOTATION]: 'nightly-report',
      [SERVICE_ANNOTATION]: 'reports',
      [POD_ANNOTATION]: 'reports-7d9f',
      [NODE_ANNOTATION]: 'node-a',
    },
  )
  await createLease(
    leaseNameFor('orders/EU west'),
    {
      holderIdentity: 'billing-0_7_x1y2',
      leaseDurationSeconds: 20,
      acquireTime: ago(7200),
      renewTime: ago(3600),
    },
    { [LOCK_NAME_ANNOTATION]: 'orders/EU west', [SERVICE_ANNOTATION]: 'billing' },
  )
  await createLease(
    'idle',
    { leaseDurationSeconds: 20, renewTime: ago(600), leaseTransitions: 5 },
    {
      [LOCK_NAME_ANNOTATION]: 'idle',
    },
  )
  // Not managed by kube-locks: never shown.
  await createLease('kube-scheduler', { holderIdentity: 'scheduler-1', leaseDurationSeconds: 15 }, {}, {})
})

const table = (text: string) => normalise(text, namespace, { table: true })

/** Every cell starts where its header does: the golden files fold the padding, this checks it. */
function expectAligned(text: string): void {
  const [header = '', ...rows] = text.trimEnd().split('\n')
  const starts = [...header.matchAll(/(?<= {3})\S/g)].map((match) => match.index)
  for (const row of rows) {
    for (const start of starts) {
      expect(`${row[start - 1]}${row[start]}`, `column at ${start} in ${JSON.stringify(row)}`).toMatch(
        /^ \S$/,
      )
    }
  }
}

function cellsOf(text: string, name: string): string[] {
  const row = text.split('\n').find((line) => line.startsWith(`${name}   `)) ?? ''
  return row.split(/ {3,}/)
}

describe('locks list', () => {
  it('prints a table of the managed leases with lock names', async () => {
    const result = await locks(['list', '-n', namespace])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expectGolden('cli-list.txt', table(result.stdout))
    expectAligned(result.stdout)
    // EXPIRES IN: an hour's lease renewed seconds ago; a 20 s lease renewed an hour ago.
    expect(cellsOf(result.stdout, 'nightly-report')[4]).toMatch(/^5\dm$/)
    expect(cellsOf(result.stdout, 'orders/EU west')[4]).toMatch(/^expired (59|6\d)m ago$/)
  })

  it('prints the wide table, without headers on request', async () => {
    const headed = await locks(['ls', '-n', namespace, '-o', 'wide'])
    expectAligned(headed.stdout)
    const result = await locks(['ls', '-n', namespace, '-o', 'wide', '--no-headers'])
    expect(result.code).toBe(0)
    expect(table(result.stdout)).toBe(table(headed.stdout.slice(headed.stdout.indexOf('\n') + 1)))
    expectGolden('cli-list-wide.txt', table(result.stdout))
  })

  it('adds the NAMESPACE column across namespaces', async () => {
    const result = await locks(['list', '-A'])
    expect(result.code).toBe(0)
    const header = result.stdout.split('\n')[0]
    expect(header).toMatch(
      /^NAMESPACE +NAME +HOLDER +SERVICE +AGE +EXPIRES IN +HOLDERS +WAITING +TRANSITIONS$/,
    )
    const ours = result.stdout.split('\n').filter((line) => line.startsWith(`${namespace} `))
    expectGolden('cli-list-all-namespaces.txt', table(ours.map((line) => `${line}\n`).join('')))
  })

  it('prints a v1 List as JSON and as YAML', async () => {
    const json = await locks(['list', '-n', namespace, '-o', 'json'])
    expect(json.code).toBe(0)
    expect(JSON.parse(json.stdout).items).toHaveLength(3)
    expectGolden('cli-list.json', normalise(json.stdout, namespace))
    const yaml = await locks(['list', '-n', namespace, '-o', 'yaml'])
    expect(yaml.code).toBe(0)
    expectGolden('cli-list.yaml', normalise(yaml.stdout, namespace))
  })

  it('prints resource names', async () => {
    const result = await locks(['list', '-n', namespace, '-o', 'name'])
    expect(result.code).toBe(0)
    expectGolden('cli-list-name.txt', result.stdout)
  })

  it('filters with a label selector and says on stderr when nothing matches', async () => {
    const result = await locks(['list', '-n', namespace, '-l', 'team=none'])
    expect(result).toMatchObject({
      code: 0,
      stdout: '',
      stderr: `No locks found in namespace \`${namespace}\`.\n`,
    })
  })
})

describe('locks get', () => {
  it('finds a lock by its original name, whatever its lease name', async () => {
    const result = await locks(['get', 'orders/EU west', '-n', namespace, '-o', 'yaml'])
    expect(result.code).toBe(0)
    expectGolden('cli-get.yaml', normalise(result.stdout, namespace))
  })

  it('finds a lock by its lease name and prints JSON or a table row', async () => {
    const json = await locks(['get', leaseNameFor('orders/EU west'), '-n', namespace, '-o', 'json'])
    expect(json.code).toBe(0)
    expectGolden('cli-get.json', normalise(json.stdout, namespace))
    const row = await locks(['get', 'lease.coordination.k8s.io/nightly-report', '-n', namespace])
    expect(row.code).toBe(0)
    expectGolden('cli-get.txt', table(row.stdout))
  })

  it('says what to do when the lock does not exist or is not a kube-locks lease', async () => {
    const missing = await locks(['get', 'nope', '-n', namespace])
    expect(missing).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `error: lock \`nope\` not found in namespace \`${namespace}\`: check the name and the namespace (-n), or see \`locks list -A\`\n`,
    })
    const foreign = await locks(['get', 'kube-scheduler', '-n', namespace])
    expect(foreign.code).toBe(1)
    expect(foreign.stderr).toBe(
      `error: lease \`${namespace}/kube-scheduler\` is not a kube-locks lock (it lacks the label app.kubernetes.io/managed-by=kube-locks); locks leaves it alone: use kubectl for it\n`,
    )
  })
})

describe('locks gc --dry-run', () => {
  it('shows the expired lease it would free and the long-free lease it would delete', async () => {
    const result = await locks(['gc', '--dry-run', '-n', namespace])
    expect(result.code).toBe(0)
    expectGolden('cli-gc.txt', table(result.stdout))
    expectAligned(result.stdout)
    // Free since ten minutes before the suite started.
    expect(cellsOf(result.stdout, 'idle')[3]).toMatch(/^free for 1\dm \(retention 5m\)$/)
    const json = await locks(['gc', '--dry-run', '-n', namespace, '-o', 'json'])
    expect(
      JSON.parse(json.stdout).actions.map((a: { lease: string; action: string }) => [a.lease, a.action]),
    ).toEqual([
      ['idle', 'delete'],
      [leaseNameFor('orders/EU west'), 'free'],
    ])
  })

  it('changes nothing', async () => {
    const before = await locks(['list', '-n', namespace, '-o', 'json'])
    await locks(['gc', '--dry-run', '-n', namespace])
    const after = await locks(['list', '-n', namespace, '-o', 'json'])
    expect(after.stdout).toBe(before.stdout)
  })
})
