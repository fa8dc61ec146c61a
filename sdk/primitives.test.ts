import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { expiresAt, isExpired, observe } from './expiry.ts'
import type { LeaseRecord } from './lease-record.ts'
import { leaseToRecord, recordToLease } from './lease-record.ts'
import { formatMicroTime, parseMicroTime } from './micro-time.ts'
import { compareResourceVersions } from './resource-version.ts'

describe('formatMicroTime', () => {
  it('writes exactly six fractional digits in UTC', () => {
    expect(formatMicroTime(Date.UTC(2030, 0, 2, 3, 4, 5, 678) + 0.9)).toBe('2030-01-02T03:04:05.678900Z')
    expect(formatMicroTime(Date.UTC(2030, 0, 2, 3, 4, 5, 999) + 0.9999999)).toBe(
      '2030-01-02T03:04:06.000000Z',
    )
    expect(formatMicroTime(0)).toBe('1970-01-01T00:00:00.000000Z')
    expect(formatMicroTime(Date.UTC(2030, 0, 1))).toBe('2030-01-01T00:00:00.000000Z')
  })

  it('round-trips with parseMicroTime to the microsecond', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_102_444_800_000_000 }), (micros) => {
        const text = formatMicroTime(micros / 1000)
        expect(text).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
        expect(Math.round(parseMicroTime(text) * 1000)).toBe(micros)
      }),
    )
  })

  it('rejects non-finite input', () => {
    expect(() => formatMicroTime(Number.NaN)).toThrow(TypeError)
  })
})

describe('compareResourceVersions', () => {
  it('compares beyond 2^53 exactly, where Number() would not', () => {
    expect(Number('9007199254740993') === Number('9007199254740992')).toBe(true)
    expect(compareResourceVersions('9007199254740993', '9007199254740992')).toBe(1)
    expect(compareResourceVersions('99', '100')).toBe(-1)
    expect(compareResourceVersions('100', '100')).toBe(0)
  })

  it('refuses what is not a decimal integer', () => {
    expect(() => compareResourceVersions('12a', '1')).toThrow(TypeError)
    expect(() => compareResourceVersions('', '1')).toThrow(TypeError)
  })

  it('agrees with BigInt ordering', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 80n }), fc.bigInt({ min: 0n, max: 2n ** 80n }), (a, b) => {
        expect(Math.sign(compareResourceVersions(a.toString(), b.toString()))).toBe(
          a < b ? -1 : a > b ? 1 : 0,
        )
      }),
    )
  })
})

const record: LeaseRecord = {
  namespace: 'shop',
  name: 'orders',
  uid: 'u-1',
  resourceVersion: '12345678901234567890',
  holderIdentity: 'pod-a_1_abcd',
  leaseDurationSeconds: 20,
  acquireTime: '2030-01-01T00:00:00.123456Z',
  renewTime: '2030-01-01T00:00:01.123456Z',
  leaseTransitions: 2,
  labels: { 'app.kubernetes.io/managed-by': 'kube-locks' },
  annotations: { 'kube-locks.io/name': 'Orders' },
  creationTimestamp: '2030-01-01T00:00:00Z',
}

describe('lease converters', () => {
  it('round-trip a record through a Lease object', () => {
    const lease = recordToLease(record)
    expect(lease).toMatchObject({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'orders', namespace: 'shop', uid: 'u-1', resourceVersion: '12345678901234567890' },
      spec: {
        holderIdentity: 'pod-a_1_abcd',
        leaseDurationSeconds: 20,
        acquireTime: '2030-01-01T00:00:00.123456Z',
      },
    })
    const back = leaseToRecord({
      ...lease,
      metadata: { ...lease.metadata, creationTimestamp: '2030-01-01T00:00:00Z' },
    })
    expect(back).toEqual(record)
  })

  it('keep fields kube-locks does not own, and leave out server-owned ones', () => {
    const ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: 'u-9' }]
    const lease = recordToLease(record)
    const read = leaseToRecord({
      ...lease,
      metadata: {
        ...lease.metadata,
        ownerReferences,
        finalizers: ['example.com/keep'],
        managedFields: [{ manager: 'kubectl' }],
        generation: 3,
      },
      spec: { ...lease.spec, preferredHolder: 'b', strategy: 'OldestEmulationVersion' },
    })
    expect(read.retained).toEqual({
      metadata: { ownerReferences, finalizers: ['example.com/keep'] },
      spec: { preferredHolder: 'b', strategy: 'OldestEmulationVersion' },
    })
    const written = recordToLease({ ...read, holderIdentity: 'pod-b_2_ef' })
    expect(written.metadata).toMatchObject({ ownerReferences, finalizers: ['example.com/keep'], uid: 'u-1' })
    expect(written.metadata).not.toHaveProperty('managedFields')
    expect(written.metadata).not.toHaveProperty('generation')
    expect(written.spec).toMatchObject({ holderIdentity: 'pod-b_2_ef', preferredHolder: 'b' })
  })

  it('treat an empty holder as free and omit it when writing', () => {
    const lease = recordToLease({ ...record, holderIdentity: undefined })
    expect(lease.spec).not.toHaveProperty('holderIdentity')
    const back = leaseToRecord({ ...lease, spec: { ...lease.spec, holderIdentity: '' } })
    expect(back.holderIdentity).toBeUndefined()
  })

  it('write a create body without server-owned fields', () => {
    const { uid: _uid, resourceVersion: _rv, creationTimestamp: _ts, ...draft } = record
    const lease = recordToLease(draft)
    expect(lease.metadata).not.toHaveProperty('uid')
    expect(lease.metadata).not.toHaveProperty('resourceVersion')
  })

  it('accept Date objects from the generated client', () => {
    const lease = recordToLease(record)
    const back = leaseToRecord({
      ...lease,
      spec: { ...lease.spec, renewTime: new Date(Date.UTC(2030, 0, 1)) },
    })
    expect(back.renewTime).toBe('2030-01-01T00:00:00.000Z')
  })

  it('refuse a lease without identity fields', () => {
    expect(() => leaseToRecord({ metadata: { name: 'x' } })).toThrow(/uid and resourceVersion/)
  })
})

describe('expiry rule', () => {
  it('counts from when this process first saw the resourceVersion, plus the grace', () => {
    const first = observe(undefined, record, 1000)
    const later = observe(first, { ...record }, 5000)
    expect(later.firstSeenAt).toBe(1000)
    expect(expiresAt(later, 500)).toBe(1000 + 20_000 + 500)
    expect(isExpired(later, 21_499, 500)).toBe(false)
    expect(isExpired(later, 21_500, 500)).toBe(true)
  })

  it('restarts when the lease changed', () => {
    const first = observe(undefined, record, 1000)
    const renewed = observe(first, { ...record, resourceVersion: '12345678901234567891' }, 9000)
    expect(renewed.firstSeenAt).toBe(9000)
    const recreated = observe(first, { ...record, uid: 'u-2' }, 9500)
    expect(recreated.firstSeenAt).toBe(9500)
  })

  it('treats a free lease as available at once', () => {
    expect(isExpired(observe(undefined, { ...record, holderIdentity: undefined }, 0), 0, 0)).toBe(true)
  })
})
