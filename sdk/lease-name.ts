import { createHash } from 'node:crypto'
import { InvalidLockOptionsError } from './errors.ts'

/**
 * Lock names map to Lease names.
 *
 * - A name that is already a valid DNS-1123 subdomain (at most 253 characters) is used as is, so
 *   `kubectl get leases` shows it readably...
 * - ...unless it has the hashed form below, which only hashed names may have: otherwise the name
 *   `x--<hash of y>` could be kept as is and collide with the hashed form of `y`.
 * - Every other name becomes `<slug>--<hash>`: a readable lowercase slug of the name (at most
 *   {@link MAX_SLUG_LENGTH} characters) and 160 bits of its SHA-256 in lowercase base32.
 *
 * Kept names never have the hashed form and hashed names always do, so the two sets are disjoint; within
 * each set the mapping is injective (the identity, and SHA-256 of the whole name). The original name is
 * stored on the lease in the `kube-locks.io/name` annotation.
 */

/** A hashed lease name ends with `--` and 32 base32 characters; a kept-as-is name never does. */
export const HASHED_LEASE_NAME = /--[a-z2-7]{32}$/
export const MAX_LEASE_NAME_LENGTH = 253
export const MAX_SLUG_LENGTH = 100
/** Lock names are stored in an annotation; annotations share 256 KiB per object. */
export const MAX_LOCK_NAME_BYTES = 64 * 1024

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

export function isDns1123Subdomain(value: string): boolean {
  return value.length <= MAX_LEASE_NAME_LENGTH && DNS1123_SUBDOMAIN.test(value)
}

/**
 * Checks that `name` can name a lock: a non-empty, well-formed Unicode string of at most
 * {@link MAX_LOCK_NAME_BYTES} bytes in UTF-8. Lone surrogates are refused because the API server would
 * store them as U+FFFD, so two different names would read back the same.
 */
export function validateLockName(name: unknown, option = 'name'): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidLockOptionsError(option, 'a non-empty string', name)
  }
  if (!name.isWellFormed()) {
    throw new InvalidLockOptionsError(option, 'a well-formed Unicode string (no lone surrogates)', name)
  }
  const bytes = Buffer.byteLength(name, 'utf8')
  if (bytes > MAX_LOCK_NAME_BYTES) {
    throw new InvalidLockOptionsError(
      option,
      `at most ${MAX_LOCK_NAME_BYTES} bytes in UTF-8`,
      `a string of ${bytes} bytes`,
    )
  }
  return name
}

/** The Lease name for a lock name. Deterministic and injective; see the module comment. */
export function leaseNameFor(name: string): string {
  validateLockName(name)
  if (isDns1123Subdomain(name) && !HASHED_LEASE_NAME.test(name)) return name
  return `${slugOf(name)}--${hashOf(name)}`
}

function slugOf(name: string): string {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, MAX_SLUG_LENGTH)
    .replace(/-+$/, '')
  return slug === '' ? 'lock' : slug
}

/** Label values are at most 63 characters. */
const MAX_LABEL_VALUE_LENGTH = 63
const RANDOM_CHARACTERS = 16

/**
 * A label value that names `leaseName` (tickets and holder records name their lock this way): the
 * lease name when it fits a label value, else `<prefix>-` and 160 bits of its SHA-256 in base32.
 */
export function leaseLabelValue(leaseName: string, prefix: string): string {
  if (leaseName.length <= MAX_LABEL_VALUE_LENGTH) return leaseName
  return `${prefix}-${hashOf(leaseName)}`
}

/**
 * A fresh lease name beside `leaseName`, so that `kubectl get leases` sorts it under it:
 * `<leaseName><infix><16 random base32 characters>`, the lease name cut (keeping the name valid)
 * when the whole would be too long.
 */
export function leaseNameBeside(leaseName: string, infix: string, random: Uint8Array): string {
  const suffix = `${infix}${base32(random).slice(0, RANDOM_CHARACTERS)}`
  const room = MAX_LEASE_NAME_LENGTH - suffix.length
  const prefix = leaseName.length <= room ? leaseName : leaseName.slice(0, room).replace(/[^a-z0-9]+$/, '')
  return `${prefix}${suffix}`
}

function hashOf(name: string): string {
  return base32(createHash('sha256').update(name, 'utf8').digest().subarray(0, 20))
}

/** Lowercase RFC 4648 base32 without padding: 5 bits a character, the last one padded with zero bits. */
export function base32(bytes: Uint8Array): string {
  let out = ''
  let buffer = 0
  let bits = 0
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += BASE32[(buffer >>> bits) & 31]
    }
    buffer &= (1 << bits) - 1
  }
  if (bits > 0) out += BASE32[(buffer << (5 - bits)) & 31]
  return out
}
