import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { InvalidLockOptionsError } from './errors.ts'
import { HASHED_LEASE_NAME, isDns1123Subdomain, leaseNameFor, MAX_LOCK_NAME_BYTES } from './lease-name.ts'

const anyName = fc.oneof(
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 300 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 80 }),
  fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,60}[a-z0-9])?$/),
  fc.stringMatching(/^[a-z0-9-]{0,20}--[a-z2-7]{32}$/),
  fc.string({
    unit: fc.constantFrom('a', 'A', '-', '.', '/', '_', ' ', 'é', '0'),
    minLength: 1,
    maxLength: 270,
  }),
)

describe('leaseNameFor', () => {
  it('keeps names that are already valid DNS-1123 subdomains', () => {
    for (const name of ['orders', 'update-customer', 'a', 'acct.42.eu', '0', 'x'.repeat(253)]) {
      expect(leaseNameFor(name)).toBe(name)
    }
  })

  it('maps other names to a readable slug and a hash', () => {
    expect(leaseNameFor('Orders/EU 42')).toMatch(/^orders-eu-42--[a-z2-7]{32}$/)
    expect(leaseNameFor('日本')).toMatch(/^lock--[a-z2-7]{32}$/)
    expect(leaseNameFor('x'.repeat(254))).toMatch(new RegExp(`^${'x'.repeat(100)}--[a-z2-7]{32}$`))
  })

  it('hashes valid names of the reserved hashed form, so they cannot collide with a hashed name', () => {
    const hashed = leaseNameFor('Orders')
    expect(isDns1123Subdomain(hashed)).toBe(true)
    const again = leaseNameFor(hashed)
    expect(again).not.toBe(hashed)
    expect(again).toMatch(HASHED_LEASE_NAME)
  })

  it('is deterministic, and stable across versions (leases in clusters depend on it)', () => {
    expect(leaseNameFor('a/b/c')).toBe(leaseNameFor('a/b/c'))
    expect(leaseNameFor('Orders/EU')).toBe('orders-eu--lvngl7yxlgbfchukcddqcfnk7jgo3p7d')
  })

  it('accepts a 10 KB name with slashes and Unicode', () => {
    const name = 'tenant/ü/'.repeat(1200)
    expect(Buffer.byteLength(name)).toBeGreaterThan(10_000)
    expect(isDns1123Subdomain(leaseNameFor(name))).toBe(true)
  })

  it('rejects what cannot be a lock name, saying what was expected', () => {
    expect(() => leaseNameFor('')).toThrow(InvalidLockOptionsError)
    expect(() => leaseNameFor('')).toThrow('Expected `name` to be a non-empty string, got `` (string)')
    expect(() => leaseNameFor('a\uD800b')).toThrow(/well-formed Unicode/)
    expect(() => leaseNameFor('x'.repeat(MAX_LOCK_NAME_BYTES + 1))).toThrow(/at most 65536 bytes/)
    expect(() => leaseNameFor(42 as unknown as string)).toThrow('got `42` (number)')
  })

  it('maps 10,000+ random names to valid lease names, distinct for distinct names', () => {
    const seen = new Map<string, string>()
    fc.assert(
      fc.property(anyName, (name) => {
        const lease = leaseNameFor(name)
        expect(isDns1123Subdomain(lease)).toBe(true)
        expect(lease.length).toBeLessThanOrEqual(253)
        const previous = seen.get(lease)
        if (previous !== undefined) expect(previous).toBe(name)
        seen.set(lease, name)
        if (isDns1123Subdomain(name) && !HASHED_LEASE_NAME.test(name)) expect(lease).toBe(name)
        else expect(lease).toMatch(HASHED_LEASE_NAME)
      }),
      { numRuns: 12_000 },
    )
    expect(seen.size).toBeGreaterThan(10_000)
  })

  it('keeps near-miss names apart (case, separators, kept vs hashed)', () => {
    const names = [
      'orders',
      'Orders',
      'ORDERS',
      'orders/',
      'orders-',
      'orders.',
      'orders_',
      ' orders',
      'orders--',
    ]
    const leases = names.map(leaseNameFor)
    expect(new Set(leases).size).toBe(names.length)
  })
})
