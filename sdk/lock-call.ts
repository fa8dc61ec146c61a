import { InvalidLockOptionsError } from './errors.ts'
import type { AcquireOptions } from './options.ts'

/**
 * The call forms of `acquire()` and `withLock()`, parsed once: every accepted argument tuple is a
 * member of {@link AcquireArgs} or {@link WithLockArgs}, and every other call fails with one
 * `InvalidLockOptionsError` that names the accepted forms and the call that was made. The name itself
 * (non-empty, well-formed) and the options' fields are checked where the lock is taken, by the same
 * rules as for every other entry.
 */

/** The accepted arguments of `acquire()`, the name and the options each optional. */
export type AcquireArgs =
  | readonly [name?: string | undefined, options?: AcquireOptions | undefined]
  | readonly [options: AcquireOptions]

/** The accepted arguments of `withLock()`: those of `acquire()`, and the function last. */
export type WithLockArgs<F> =
  | readonly [fn: F]
  | readonly [name: string | undefined, fn: F]
  | readonly [options: AcquireOptions, fn: F]
  | readonly [name: string | undefined, options: AcquireOptions | undefined, fn: F]

/** A call, whichever form it took. */
export interface LockCall<F> {
  readonly name: string | undefined
  readonly options: AcquireOptions | undefined
  readonly fn: F
}

/** What the arguments before the function say, by form. */
type Parsed =
  | { readonly form: 'none' }
  | { readonly form: 'name'; readonly name: string | undefined }
  | { readonly form: 'options'; readonly options: AcquireOptions }
  | {
      readonly form: 'name-options'
      readonly name: string | undefined
      readonly options: AcquireOptions | undefined
    }
  /** `at`: the index of the first argument that fits no form. */
  | { readonly form: 'misuse'; readonly at: number }

const ACQUIRE_FORMS = 'acquire(), acquire(name), acquire(options) or acquire(name, options)'
const WITH_LOCK_FORMS =
  'withLock(fn), withLock(name, fn), withLock(options, fn) or withLock(name, options, fn)'

export function parseAcquireArgs(args: readonly unknown[]): LockCall<undefined> {
  const parsed = parseNameAndOptions(args)
  if (parsed.form === 'misuse') throw misuse('acquire', ACQUIRE_FORMS, args, args[parsed.at])
  return { ...nameAndOptions(parsed), fn: undefined }
}

export function parseWithLockArgs<F>(args: readonly unknown[]): LockCall<F> {
  const fn = args.at(-1)
  if (typeof fn !== 'function') throw misuse('withLock', WITH_LOCK_FORMS, args, fn)
  const parsed = parseNameAndOptions(args.slice(0, -1))
  if (parsed.form === 'misuse') throw misuse('withLock', WITH_LOCK_FORMS, args, args[parsed.at])
  return { ...nameAndOptions(parsed), fn: fn as F }
}

function parseNameAndOptions(args: readonly unknown[]): Parsed {
  const [first, second] = args
  switch (args.length) {
    case 0:
      return { form: 'none' }
    case 1:
      if (isOptions(first)) return { form: 'options', options: first }
      if (isName(first)) return { form: 'name', name: first }
      return { form: 'misuse', at: 0 }
    case 2:
      if (!isName(first)) return { form: 'misuse', at: 0 }
      if (second !== undefined && !isOptions(second)) return { form: 'misuse', at: 1 }
      return { form: 'name-options', name: first, options: second }
    default:
      return { form: 'misuse', at: 2 }
  }
}

function nameAndOptions(parsed: Exclude<Parsed, { form: 'misuse' }>): {
  name: string | undefined
  options: AcquireOptions | undefined
} {
  switch (parsed.form) {
    case 'none':
      return { name: undefined, options: undefined }
    case 'name':
      return { name: parsed.name, options: undefined }
    case 'options':
      return { name: undefined, options: parsed.options }
    case 'name-options':
      return { name: parsed.name, options: parsed.options }
  }
}

function isName(value: unknown): value is string | undefined {
  return value === undefined || typeof value === 'string'
}

function isOptions(value: unknown): value is AcquireOptions {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `given`: the first argument that fits no form (for a missing function, the last argument). */
function misuse(
  method: string,
  forms: string,
  args: readonly unknown[],
  given: unknown,
): InvalidLockOptionsError {
  return new InvalidLockOptionsError(
    'arguments',
    `${forms} (name a string, options an object, fn a function); called as ` +
      `${method}(${args.map(kindOf).join(', ')})`,
    given,
  )
}

function kindOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}
