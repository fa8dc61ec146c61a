import { describe, expect, it } from 'vitest'
import type { LeaseJson } from './api.ts'
import { UsageError } from './errors.ts'
import {
  checkOutput,
  cleanObject,
  formatItems,
  type Item,
  type PrintOptions,
  sortItems,
  WatchPrinter,
} from './output.ts'

const KEYS = { name: 'kube-locks.io/name', service: 'kube-locks.io/service', pod: 'p', node: 'n' }
const NOW = Date.parse('2030-01-01T12:00:00Z')

function item(
  name: string,
  holder: string | undefined,
  lockName = name,
  extra: Pick<Item, 'waiting' | 'queue' | 'holding'> = {},
): Item {
  const json: LeaseJson = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name,
      namespace: 'shop',
      uid: `uid-${name}`,
      resourceVersion: '7',
      creationTimestamp: '2030-01-01T11:59:00Z',
      annotations: { 'kube-locks.io/name': lockName },
      managedFields: [{ manager: 'x' }],
    },
    spec: {
      ...(holder ? { holderIdentity: holder } : {}),
      leaseDurationSeconds: 20,
      renewTime: '2030-01-01T11:59:50.000001Z',
    },
  }
  return {
    json,
    view: {
      namespace: 'shop',
      name,
      uid: `uid-${name}`,
      resourceVersion: '7',
      holderIdentity: holder,
      leaseDurationSeconds: 20,
      acquireTime: undefined,
      renewTime: '2030-01-01T11:59:50.000001Z',
      leaseTransitions: 1,
      annotations: { 'kube-locks.io/name': lockName },
      labels: {},
      creationTimestamp: '2030-01-01T11:59:00Z',
    },
    ...extra,
  }
}

/** A waiter's ticket for lock `lock`, as the API server sends it. */
function ticket(lock: string, suffix: string, holder: string, acquireTime: string): Item {
  const name = `${lock}.q-${suffix}`
  const labels = { 'app.kubernetes.io/managed-by': 'kube-locks', 'kube-locks.io/queue-for': lock }
  const annotations = {
    'kube-locks.io/name': lock,
    'kube-locks.io/waits-for': lock,
    'kube-locks.io/service': 'billing',
    p: `pod-${suffix}`,
  }
  const spec = {
    holderIdentity: holder,
    leaseDurationSeconds: 15,
    acquireTime,
    renewTime: '2030-01-01T11:59:58.000000Z',
  }
  return {
    json: {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name, namespace: 'shop', uid: `uid-${name}`, resourceVersion: '9', labels, annotations },
      spec,
    },
    view: {
      namespace: 'shop',
      name,
      uid: `uid-${name}`,
      resourceVersion: '9',
      leaseTransitions: 0,
      labels,
      annotations,
      creationTimestamp: undefined,
      ...spec,
    },
  }
}

const base: PrintOptions = { format: 'table', allNamespaces: false, noHeaders: false, now: NOW, keys: KEYS }

describe('formatItems', () => {
  it('prints a table by default', () => {
    expect(formatItems([item('a', 'w_1_x'), item('b--h', undefined, 'b/B')], base)).toBe(
      [
        'NAME   HOLDER   SERVICE   AGE   EXPIRES IN   HOLDERS   WAITING   TRANSITIONS',
        'a      w_1_x    <none>    60s   10s          1         0         1',
        'b/B    <none>   <none>    60s   <none>       0         0         1',
        '',
      ].join('\n'),
    )
  })

  it('counts waiters in the WAITING column and as status.waiting in json and yaml', () => {
    const items = [item('a', 'w_1_x', 'a', { waiting: 3 }), item('b', undefined, 'b', { waiting: 0 })]
    expect(formatItems(items, base).split('\n')[1]).toBe(
      'a      w_1_x    <none>    60s   10s          1         3         1',
    )
    const list = JSON.parse(formatItems(items, { ...base, format: 'json' }))
    expect(list.items.map((i: { status?: unknown }) => i.status)).toEqual([{ waiting: 3 }, { waiting: 0 }])
    expect(formatItems(items, { ...base, format: 'yaml' })).toContain('    status:\n      waiting: 3\n')
    // -o name stays a list of names
    expect(formatItems(items, { ...base, format: 'name' })).toBe(
      'lease.coordination.k8s.io/a\nlease.coordination.k8s.io/b\n',
    )
  })

  it('prints a lock with its queue in line order under it, for get', () => {
    const queue = [
      ticket('a', 'first', 'w-2_1_y', '2030-01-01T11:58:00.000000Z'),
      ticket('a', 'second', 'w-3_1_z', '2030-01-01T11:59:30.000000Z'),
    ]
    const lock = item('a', 'w_1_x', 'a', { waiting: 2, queue })
    expect(formatItems([lock], base, true)).toBe(
      [
        'NAME   HOLDER   SERVICE   AGE   EXPIRES IN   HOLDERS   WAITING   TRANSITIONS',
        'a      w_1_x    <none>    60s   10s          1         2         1',
        '',
        'POSITION   HOLDER    SERVICE   POD          WAITING FOR',
        '1          w-2_1_y   billing   pod-first    2m',
        '2          w-3_1_z   billing   pod-second   30s',
        '',
      ].join('\n'),
    )
    expect(formatItems([lock], { ...base, format: 'wide' }, true).split('\n')[3]).toBe(
      'POSITION   HOLDER    SERVICE   POD          WAITING FOR   TICKET       NODE     EXPIRES IN',
    )
    expect(formatItems([lock], { ...base, noHeaders: true }, true)).toBe(
      [
        'a   w_1_x   <none>   60s   10s   1   2   1',
        '',
        '1   w-2_1_y   billing   pod-first    2m',
        '2   w-3_1_z   billing   pod-second   30s',
        '',
      ].join('\n'),
    )
    // Nothing under a lock nobody waits for.
    expect(
      formatItems([item('a', 'w_1_x', 'a', { waiting: 0, queue: [] })], base, true).split('\n'),
    ).toHaveLength(3)
  })

  it('prints the holders of a semaphore under its row, for get, and leaves them out of custom columns', () => {
    const record = (suffix: string, resourceVersion: string): Item => {
      const base = item(`a.h-${suffix}`, `s-${suffix}_1_x`, 'a')
      const annotations = {
        ...base.view.annotations,
        'kube-locks.io/mode': 'semaphore',
        'kube-locks.io/limit': '3',
        'kube-locks.io/service': 'sync',
      }
      return {
        json: { ...base.json, metadata: { ...base.json.metadata, resourceVersion, annotations } },
        view: { ...base.view, resourceVersion, annotations },
      }
    }
    const holders = [record('one', '31'), record('two', '32')]
    const lock = item('a', undefined, 'a', {
      waiting: 0,
      queue: [],
      holding: {
        mode: { kind: 'semaphore', limit: 3 },
        holders,
        count: 2,
        waiters: [],
        exclusiveWaits: false,
      },
    })
    expect(formatItems([lock], base, true)).toBe(
      [
        'NAME   HOLDER        SERVICE   AGE   EXPIRES IN   HOLDERS   WAITING   TRANSITIONS',
        'a      <2 holders>   sync      60s   10s          2/3       0         1',
        '',
        'HOLDER      MODE                  SERVICE   POD      ACQUIRED   RENEWED   EXPIRES IN   RESOURCEVERSION',
        's-one_1_x   semaphore (limit 3)   sync      <none>   <none>     10s       10s          31',
        's-two_1_x   semaphore (limit 3)   sync      <none>   <none>     10s       10s          32',
        '',
      ].join('\n'),
    )
    expect(
      formatItems([lock], { ...base, format: 'wide' }, true)
        .split('\n')[3]
        ?.split(/ {3,}/)
        .slice(-3),
    ).toEqual(['RECORD', 'NODE', 'DURATION'])
    const columns = {
      kind: 'custom-columns',
      columns: [{ header: 'HOLDING', path: '.status.holding' }],
    } as const
    expect(formatItems([lock], { ...base, format: columns }, true)).toBe('HOLDING\n2\n')
  })

  it('puts the queue in status for get -o json and yaml, with the times as the server wrote them', () => {
    const queue = [ticket('a', 'first', 'w-2_1_y', '2030-01-01T11:58:00.000001Z')]
    const one = JSON.parse(
      formatItems([item('a', 'w', 'a', { waiting: 1, queue })], { ...base, format: 'json' }, true),
    )
    expect(one.kind).toBe('Lease')
    expect(one.status).toEqual({
      waiting: 1,
      queue: [
        {
          position: 1,
          lease: 'a.q-first',
          holderIdentity: 'w-2_1_y',
          service: 'billing',
          pod: 'pod-first',
          acquireTime: '2030-01-01T11:58:00.000001Z',
          renewTime: '2030-01-01T11:59:58.000000Z',
          leaseDurationSeconds: 15,
        },
      ],
    })
    const yaml = formatItems([item('a', 'w', 'a', { waiting: 1, queue })], { ...base, format: 'yaml' }, true)
    expect(yaml).toContain("acquireTime: '2030-01-01T11:58:00.000001Z'")
  })

  it('prints a v1 List without managedFields as JSON, and one object for a single result', () => {
    const list = JSON.parse(formatItems([item('a', 'w')], { ...base, format: 'json' }))
    expect(list).toMatchObject({ apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' } })
    expect(list.items[0].metadata.managedFields).toBeUndefined()
    expect(list.items[0].spec.renewTime).toBe('2030-01-01T11:59:50.000001Z')
    const one = JSON.parse(formatItems([item('a', 'w')], { ...base, format: 'json' }, true))
    expect(one.kind).toBe('Lease')
  })

  it('prints YAML with sorted keys and MicroTime strings intact', () => {
    const text = formatItems([item('a', 'w')], { ...base, format: 'yaml' }, true)
    expect(text.split('\n').filter((line) => /^\S/.test(line))).toEqual([
      'apiVersion: coordination.k8s.io/v1',
      'kind: Lease',
      'metadata:',
      'spec:',
    ])
    expect(text).toContain("renewTime: '2030-01-01T11:59:50.000001Z'")
    expect(text).not.toContain('managedFields')
  })

  it('prints resource names', () => {
    expect(formatItems([item('a', 'w'), item('b--h', undefined)], { ...base, format: 'name' })).toBe(
      'lease.coordination.k8s.io/a\nlease.coordination.k8s.io/b--h\n',
    )
  })

  it('cleanObject leaves the input alone', () => {
    const { json } = item('a', 'w')
    cleanObject(json)
    expect(json.metadata?.managedFields).toBeDefined()
  })
})

describe('WatchPrinter', () => {
  it('prints the header with the first rows only and keeps columns aligned', () => {
    const printer = new WatchPrinter(base)
    expect(printer.print([], NOW)).toBe('')
    const first = printer.print([item('a', 'w_1_x')], NOW)
    const next = printer.print([item('a', undefined)], NOW)
    expect(first).toBe(
      'NAME   HOLDER   SERVICE   AGE   EXPIRES IN   HOLDERS   WAITING   TRANSITIONS\na      w_1_x    <none>    60s   10s          1         0         1\n',
    )
    expect(next).toBe('a      <none>   <none>    60s   <none>       0         0         1\n')
  })

  it('prints one document per change in YAML and one object per change in JSON', () => {
    const yaml = new WatchPrinter({ ...base, format: 'yaml' })
    expect(yaml.print([item('a', 'w'), item('b', 'w')], NOW).match(/^---$/gm)).toHaveLength(2)
    const json = new WatchPrinter({ ...base, format: 'json' })
    const printed = JSON.parse(json.print([item('a', 'w', 'a', { waiting: 2 })], NOW))
    expect(printed.kind).toBe('Lease')
    expect(printed.status).toEqual({ waiting: 2 })
  })
})

describe('kubectl templates and sorting', () => {
  const labelled = (name: string, holder: string | undefined, labels: Record<string, string>): Item => {
    const plain = item(name, holder)
    return {
      ...plain,
      json: { ...plain.json, metadata: { ...plain.json.metadata, labels } },
      view: { ...plain.view, labels },
    }
  }

  it('prints -o jsonpath over the v1 List, and over the lock for get', () => {
    const items = [item('a', 'w_1_x'), item('b', undefined)]
    const jsonpath = (template: string) => ({ ...base, format: { kind: 'jsonpath', template } }) as const
    expect(formatItems(items, jsonpath('{.items[*].metadata.name}'))).toBe('a b')
    expect(
      formatItems(items, jsonpath('{range .items[*]}{.metadata.name}={.spec.holderIdentity}{"\\n"}{end}')),
    ).toBe('a=w_1_x\nb=\n')
    expect(
      formatItems([item('a', 'w_1_x', 'a', { waiting: 2, queue: [] })], jsonpath('{.status.waiting}'), true),
    ).toBe('2')
  })

  it('prints -o custom-columns as a table, <none> where a field is missing', () => {
    const format = {
      kind: 'custom-columns',
      columns: [
        { header: 'LOCK', path: '.metadata.annotations.kube-locks\\.io/name' },
        { header: 'NAME', path: '.metadata.name' },
        { header: 'HOLDER', path: '{.spec.holderIdentity}' },
      ],
    } as const
    const text = formatItems([item('a', 'w_1_x'), item('b', undefined)], { ...base, format })
    expect(text).toBe(
      ['LOCK     NAME   HOLDER', '<none>   a      w_1_x', '<none>   b      <none>', ''].join('\n'),
    )
    const queue = [ticket('a', 'first', 'w-2_1_y', '2030-01-01T11:58:00.000000Z')]
    const single = formatItems(
      [item('a', 'w', 'a', { waiting: 1, queue })],
      { ...base, format, noHeaders: true },
      true,
    )
    // The lock's row alone: no queue table under custom columns.
    expect(single).toBe('<none>   a   w\n')
  })

  it('adds a LABELS column with --show-labels', () => {
    const items = [labelled('a', 'w', { team: 'shop', app: 'x' }), labelled('b', undefined, {})]
    const lines = formatItems(items, { ...base, showLabels: true })
      .trimEnd()
      .split('\n')
    expect(lines.map((line) => line.split(/ {3,}/).at(-1))).toEqual(['LABELS', 'app=x,team=shop', '<none>'])
    expect(formatItems(items, { ...base, showLabels: true, format: 'wide' }).split('\n')[0]).toMatch(
      / {3}NODE +MODE +LABELS$/,
    )
  })

  it('sorts by a field of the lease: numbers by value, text by text, missing first, ties in order', () => {
    const withSpec = (name: string, spec: Record<string, unknown>): Item => {
      const plain = item(name, undefined)
      return { ...plain, json: { ...plain.json, spec } }
    }
    const items = [
      withSpec('c', { leaseDurationSeconds: 100, holderIdentity: 'b' }),
      withSpec('a', { leaseDurationSeconds: 9, holderIdentity: 'c' }),
      withSpec('d', {}),
      withSpec('b', { leaseDurationSeconds: 20, holderIdentity: 'a' }),
      withSpec('e', {}),
    ]
    const names = (sorted: readonly Item[]) => sorted.map((i) => i.view.name)
    expect(names(sortItems(items, '.spec.leaseDurationSeconds', KEYS))).toEqual(['d', 'e', 'a', 'b', 'c'])
    expect(names(sortItems(items, '{.spec.holderIdentity}', KEYS))).toEqual(['d', 'e', 'b', 'c', 'a'])
    expect(names(sortItems(items, 'metadata.name', KEYS))).toEqual(['a', 'b', 'c', 'd', 'e'])
    expect(() => sortItems(items, '{.spec', KEYS)).toThrow(UsageError)
  })

  it('rejects a bad template or field before printing anything', () => {
    expect(() => checkOutput({ kind: 'jsonpath', template: '{range .items[*]}' })).toThrow('has no `{end}`')
    expect(() => checkOutput({ kind: 'custom-columns', columns: [{ header: 'X', path: '{.a' }] })).toThrow(
      UsageError,
    )
    expect(() => checkOutput('table', '.metadata[')).toThrow(UsageError)
    expect(() => checkOutput('table', '.metadata.name')).not.toThrow()
  })

  it('prints each change through the template under --watch, and keeps custom columns aligned', () => {
    const printer = new WatchPrinter({
      ...base,
      format: { kind: 'jsonpath', template: '{.metadata.name}{"\\n"}' },
    })
    expect(printer.print([item('a', 'w')], NOW)).toBe('a\n')
    expect(printer.print([item('b', 'w')], NOW)).toBe('b\n')
    const columns = new WatchPrinter({
      ...base,
      format: {
        kind: 'custom-columns',
        columns: [
          { header: 'N', path: '.metadata.name' },
          { header: 'H', path: '.spec.holderIdentity' },
        ],
      },
    })
    expect(columns.print([item('long-name', 'w')], NOW)).toBe('N           H\nlong-name   w\n')
    expect(columns.print([item('b', 'x')], NOW)).toBe('b           x\n')
  })
})
