/**
 * A `resourceVersion` is an etcd revision: a decimal integer that can exceed 2^53, comparable within a
 * resource type (KEP-5504). Never convert it with `Number()`.
 */

const DECIMAL = /^(0|[1-9][0-9]*)$/

export function isResourceVersion(value: unknown): value is string {
  return typeof value === 'string' && DECIMAL.test(value)
}

/**
 * Compares two resourceVersions: negative if `a` is older than `b`, 0 if equal, positive if newer.
 * Throws a `TypeError` for anything that is not a decimal integer string.
 */
export function compareResourceVersions(a: string, b: string): number {
  if (!isResourceVersion(a) || !isResourceVersion(b)) {
    throw new TypeError(
      `Expected resourceVersions to be decimal integer strings, got ${JSON.stringify(a)} and ${JSON.stringify(b)}`,
    )
  }
  // Canonical decimals (no leading zeros): the longer is the larger, equal lengths compare as text.
  if (a.length !== b.length) return a.length < b.length ? -1 : 1
  return a < b ? -1 : a > b ? 1 : 0
}
