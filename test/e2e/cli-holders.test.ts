/**
 * Semaphores and shared locks through the CLI on the real API server: their holders are shown in the
 * lock's row (HOLDERS) and listed by `get`, never as locks of their own; `run --shared` holders run
 * together, `run --limit 1` holders one after the other; a mode conflict exits with its own code; and
 * `release --holder` frees one holder of a semaphore.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { createLocks } from '../../sdk/internal.ts'
import { CliProcess, locks } from './cli-helpers.ts'
import { adminKubeConfig, apiRequest, createNamespace, waitFor } from './support.ts'

/** The exit code `run` documents for a mode conflict (docs/cli.md, "Exit codes"). */
const MODE_CONFLICT = 78

let namespace: string
let dir: string

beforeEach(async () => {
  namespace = await createNamespace('cli-holders')
  dir = mkdtempSync(join(tmpdir(), 'locks-holders-'))
})

afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

/** A client of this process, closed when the test ends. */
function client(identity: string) {
  const client = createLocks({ kubeConfig: adminKubeConfig(), namespace, identity, service: 'sync' })
  onTestFinished(() => client.close())
  return client
}

/** The table's rows as cells, and one column of a row by its header. */
/** The resourceVersion of a lease as stored now. */
async function resourceVersionOf(leaseName: string): Promise<string> {
  const lease = await apiRequest(
    'GET',
    `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${leaseName}`,
  )
  return (lease.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion
}

function table(stdout: string) {
  const rows = stdout
    .trimEnd()
    .split('\n')
    .map((line) => line.split(/ {3,}/))
  const header = rows[0] ?? []
  const column = (row: readonly string[] | undefined, name: string) => {
    const index = header.indexOf(name)
    expect(index, `column ${name} in ${JSON.stringify(header)}`).toBeGreaterThanOrEqual(0)
    return row?.[index]
  }
  return { header, rows: rows.slice(1), column }
}

/**
 * Shell for the commands `run` runs, with the test's directory as `$0`: `w FILE` waits until the file
 * exists there, and exits 9 after 30 s so that a test that goes wrong does not hang.
 */
const WAIT_FOR =
  'w() { i=0; while [ ! -e "$0/$1" ]; do i=$((i+1)); [ "$i" -gt 300 ] && exit 9; sleep 0.1; done; }; '

describe('a semaphore held by two holders of the SDK', () => {
  it('is one row with HOLDERS 2/3 in list, lists both holders in get, and refuses another limit', async () => {
    const first = await client('sync-a').acquire('partner-api', { limit: 3, expires: 60, timeout: 10 })
    onTestFinished(() => first.release())
    const second = await client('sync-b').acquire('partner-api', { limit: 3, expires: 60, timeout: 10 })
    onTestFinished(() => second.release())

    const list = await locks(['list', '-n', namespace])
    expect(list.stderr).toBe('')
    expect(list.code).toBe(0)
    const { rows, column } = table(list.stdout)
    // One row: the holder records are not locks.
    expect(rows.map((row) => row[0])).toEqual(['partner-api'])
    expect(list.stdout).not.toContain('.h-')
    expect([column(rows[0], 'HOLDERS'), column(rows[0], 'HOLDER'), column(rows[0], 'SERVICE')]).toEqual([
      '2/3',
      '<2 holders>',
      'sync',
    ])
    expect(column(rows[0], 'WAITING')).toBe('0')

    const json = JSON.parse((await locks(['list', '-n', namespace, '-o', 'json'])).stdout)
    expect(json.items).toHaveLength(1)
    expect(json.items[0].status).toMatchObject({ mode: 'semaphore', limit: 3, holding: 2, waiting: 0 })

    const get = await locks(['get', 'partner-api', '-n', namespace])
    expect(get.stderr).toBe('')
    expect(get.code).toBe(0)
    const [lockTable = '', holdersTable = ''] = get.stdout.split('\n\n')
    expect(table(lockTable).rows.map((row) => row[0])).toEqual(['partner-api'])
    const holders = table(holdersTable)
    expect(holders.header).toEqual([
      'HOLDER',
      'MODE',
      'SERVICE',
      'POD',
      'ACQUIRED',
      'RENEWED',
      'EXPIRES IN',
      'RESOURCEVERSION',
    ])
    // First in line first, each with its record's resourceVersion.
    expect(
      holders.rows.map((row) => [
        holders.column(row, 'HOLDER'),
        holders.column(row, 'MODE'),
        holders.column(row, 'SERVICE'),
        holders.column(row, 'RESOURCEVERSION'),
      ]),
    ).toEqual([
      [first.holder, 'semaphore (limit 3)', 'sync', await resourceVersionOf(first.leaseName)],
      [second.holder, 'semaphore (limit 3)', 'sync', await resourceVersionOf(second.leaseName)],
    ])

    // Another limit for the same name: the documented exit code, and the command does not run.
    const marker = join(dir, 'ran')
    const conflict = await locks([
      'run',
      'partner-api',
      '-n',
      namespace,
      '--limit',
      '5',
      '--timeout',
      '0',
      '--',
      'touch',
      marker,
    ])
    expect(conflict.code).toBe(MODE_CONFLICT)
    expect(conflict.stderr).toContain(
      `lock \`partner-api\` in namespace \`${namespace}\` is in use as a semaphore (limit 3), but this run asked for a semaphore (limit 5); the command did not run`,
    )
    expect(existsSync(marker)).toBe(false)
    expect(table((await locks(['list', '-n', namespace])).stdout).rows.map((row) => row[0])).toEqual([
      'partner-api',
    ])
  })

  it('frees one holder with release --holder, and says which', async () => {
    const first = await client('sync-a').acquire('partner-api', { limit: 3, expires: 60, timeout: 10 })
    onTestFinished(() => first.release())
    const second = await client('sync-b').acquire('partner-api', { limit: 3, expires: 60, timeout: 10 })
    onTestFinished(() => second.release())

    const version = await resourceVersionOf(first.leaseName)
    const release = await locks(['release', 'partner-api', '-n', namespace, '--holder', first.holder])
    expect(release.stderr).toBe('')
    expect(release.code).toBe(0)
    expect(release.stdout).toMatch(
      new RegExp(
        `^lock "partner-api" in namespace \`${namespace}\`: holder "${first.holder}" released \\(holder record ${first.leaseName}, resourceVersion ${version} -> \\d+\\)\\n$`,
      ),
    )
    const { rows, column } = table((await locks(['list', '-n', namespace])).stdout)
    expect([column(rows[0], 'HOLDERS'), column(rows[0], 'HOLDER')]).toEqual(['1/3', second.holder])
  })
})

describe('locks run --shared', () => {
  it('runs two shared holders at the same time', async () => {
    // Each marks that it runs and waits for the other's mark, then for the test's word to end: only
    // holders that run at the same time both get past the first wait.
    const shared = (me: string, other: string) =>
      new CliProcess([
        'run',
        'reports',
        '-n',
        namespace,
        '--shared',
        '--timeout',
        '30',
        '--',
        'sh',
        '-c',
        `${WAIT_FOR}touch "$0/$1"; w "$2"; touch "$0/$1-saw-$2"; w end`,
        dir,
        me,
        other,
      ])
    const one = shared('one', 'two')
    const two = shared('two', 'one')
    await waitFor(
      'both shared holders to see each other run',
      () => ['one-saw-two', 'two-saw-one'].every((file) => existsSync(join(dir, file))),
      { timeoutMs: 30_000 },
    )

    const { rows, column } = table((await locks(['list', '-n', namespace])).stdout)
    expect([column(rows[0], 'NAME'), column(rows[0], 'HOLDERS')]).toEqual(['reports', 'shared ×2'])

    writeFileSync(join(dir, 'end'), '')
    expect((await one.done).code).toBe(0)
    expect((await two.done).code).toBe(0)
  })
})

describe('locks run --limit 1', () => {
  it('runs the second holder only once the first is done; meanwhile it waits in line', async () => {
    const first = new CliProcess([
      'run',
      'gate',
      '-n',
      namespace,
      '--limit',
      '1',
      '--identity',
      'first',
      '--',
      'sh',
      '-c',
      `${WAIT_FOR}touch "$0/first-runs"; w first-may-end`,
      dir,
    ])
    await waitFor('the first holder to run', () => existsSync(join(dir, 'first-runs')), { timeoutMs: 30_000 })
    const second = new CliProcess([
      'run',
      'gate',
      '-n',
      namespace,
      '--limit',
      '1',
      '--identity',
      'second',
      '--timeout',
      '60',
      '--',
      'touch',
      join(dir, 'second-ran'),
    ])
    const queue = await waitFor(
      'the second holder to wait in line',
      async () => {
        const get = await locks(['get', 'gate', '-n', namespace, '-o', 'json'])
        const status = JSON.parse(get.stdout).status as {
          holders: { holderIdentity: string }[]
          queue: { holderIdentity: string }[]
        }
        return status.queue.length === 1 ? status : undefined
      },
      { timeoutMs: 30_000 },
    )
    expect(queue.holders.map((holder) => holder.holderIdentity.split('_')[0])).toEqual(['first'])
    expect(queue.queue.map((waiter) => waiter.holderIdentity.split('_')[0])).toEqual(['second'])
    // In line while the first holds the only place: it has not run.
    expect(existsSync(join(dir, 'second-ran'))).toBe(false)
    const { rows, column } = table((await locks(['list', '-n', namespace])).stdout)
    expect([column(rows[0], 'HOLDERS'), column(rows[0], 'WAITING')]).toEqual(['1/1', '1'])

    writeFileSync(join(dir, 'first-may-end'), '')
    expect((await first.done).code).toBe(0)
    const result = await second.done
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(existsSync(join(dir, 'second-ran'))).toBe(true)
  })
})
