import { describe, expect, it } from 'vitest'
import type { LeaseJson } from './api.ts'
import { cleanObject, formatItems, type Item, type PrintOptions, WatchPrinter } from './output.ts'

const KEYS = { name: 'kube-locks.io/name', service: 'kube-locks.io/service', pod: 'p', node: 'n' }
const NOW = Date.parse('2030-01-01T12:00:00Z')

function item(name: string, holder: string | undefined, lockName = name): Item {
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
      creationTimestamp: '2030-01-01T11:59:00Z',
    },
  }
}

const base: PrintOptions = { format: 'table', allNamespaces: false, noHeaders: false, now: NOW, keys: KEYS }

describe('formatItems', () => {
  it('prints a table by default', () => {
    expect(formatItems([item('a', 'w_1_x'), item('b--h', undefined, 'b/B')], base)).toBe(
      [
        'NAME   HOLDER   SERVICE   AGE   EXPIRES IN   TRANSITIONS',
        'a      w_1_x    <none>    60s   10s          1',
        'b/B    <none>   <none>    60s   <none>       1',
        '',
      ].join('\n'),
    )
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
      'NAME   HOLDER   SERVICE   AGE   EXPIRES IN   TRANSITIONS\na      w_1_x    <none>    60s   10s          1\n',
    )
    expect(next).toBe('a      <none>   <none>    60s   <none>       1\n')
  })

  it('prints one document per change in YAML and one object per change in JSON', () => {
    const yaml = new WatchPrinter({ ...base, format: 'yaml' })
    expect(yaml.print([item('a', 'w'), item('b', 'w')], NOW).match(/^---$/gm)).toHaveLength(2)
    const json = new WatchPrinter({ ...base, format: 'json' })
    expect(JSON.parse(json.print([item('a', 'w')], NOW)).kind).toBe('Lease')
  })
})
