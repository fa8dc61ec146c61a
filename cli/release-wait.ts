import {
  expiresAt,
  freedRecord,
  isFree,
  isManaged,
  type LeaseObservation,
  leaseToRecord,
  observe,
  recordToLease,
  setClampedTimeout,
  WatchExpiredError,
} from '../sdk/internal.ts'
import type { LeaseJson, WatchEvent } from './api.ts'
import type { CliContext } from './session.ts'

/**
 * How `locks release` (without `--force`) decides that a held lock may be freed: like every client
 * (DESIGN.md, "Time"), only once *this* machine's monotonic clock has seen the lease unchanged (same
 * uid and resourceVersion) for its `leaseDurationSeconds` plus a grace. The times written in the lease
 * come from the holder's clock and are never trusted: an operator whose clock runs ahead would
 * otherwise free the lock of a holder that is still valid.
 */

/** The Lease API calls the wait makes: `ApiClient` in the CLI, a fake in tests. */
export interface ReleaseApi {
  get(namespace: string, name: string, signal?: AbortSignal): Promise<LeaseJson | undefined>
  /** Writes under the uid and resourceVersion in `lease.metadata`; `undefined` when they no longer match. */
  replace(lease: LeaseJson, signal?: AbortSignal): Promise<LeaseJson | undefined>
  watch(
    namespace: string | undefined,
    query: { fieldSelector: string; resourceVersion: string },
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void>
}

export interface ReleaseWaitOptions {
  readonly api: ReleaseApi
  /** Monotonic milliseconds (`performance.now()`): the only clock the decision reads. */
  readonly monotonic: () => number
  /** Wall-clock epoch milliseconds: for the `renewTime` written and the times shown, never for deciding. */
  readonly wallNow: () => number
  /** Milliseconds the lease must stay unchanged beyond its duration. */
  readonly graceMs: number
  /** Milliseconds to wait in all before giving up; `Infinity` waits until the lock expires or comes free. */
  readonly timeoutMs: number
  readonly signal: AbortSignal
  /** Told when a wait starts: on the first judgement and after every change of the lease. */
  readonly onWait?: ((wait: ReleaseWait) => void) | undefined
}

export interface ReleaseWait {
  /** The lease as last seen, and what it was before (on a change). */
  readonly lease: LeaseJson
  readonly previous: LeaseJson | undefined
  /** Milliseconds the lease must stay unchanged from when it was first seen. */
  readonly neededMs: number
  /** Monotonic milliseconds until the lock counts as expired, and until the wait gives up. */
  readonly expiresInMs: number
  readonly givesUpInMs: number
}

export type ReleaseOutcome =
  /** Freed by this call: `lease` was seen unchanged for `neededMs`, and `freed` is the written object. */
  | {
      readonly kind: 'freed'
      readonly lease: LeaseJson
      readonly freed: LeaseJson
      readonly neededMs: number
    }
  /** Free when first read: nothing to do. */
  | { readonly kind: 'free'; readonly lease: LeaseJson }
  /** Its holder (or someone else) freed it while this waited: nothing to do. */
  | { readonly kind: 'released'; readonly lease: LeaseJson }
  | { readonly kind: 'deleted' }
  /** Lost the managed-by label meanwhile: not ours to write. */
  | { readonly kind: 'not-managed'; readonly lease: LeaseJson }
  /** Its lease carries no duration: it never expires by observation. */
  | { readonly kind: 'never-expires'; readonly lease: LeaseJson }
  /** Still held, and not yet expired by observation, when the timeout passed. */
  | {
      readonly kind: 'timed-out'
      readonly lease: LeaseJson
      /** How often the lease changed while this waited (renewals, handovers). */
      readonly changes: number
      readonly neededMs: number
    }

/**
 * The lease as `release` writes it: the SDK's own "free" transform (no holder, no holder annotations,
 * `renewTime` now), every other field kept; uid and resourceVersion stay as preconditions.
 */
export function freedLease(lease: LeaseJson, wallNow: number): LeaseJson {
  return recordToLease(freedRecord(leaseToRecord(lease), wallNow)) as LeaseJson
}

/**
 * Frees `lease` once it has been seen unchanged for its duration plus the grace, watching it meanwhile:
 * a change (a renewal, a handover) restarts the wait; a release or deletion ends it with nothing to do;
 * the timeout ends it with nothing changed. The write carries the uid and resourceVersion that were
 * watched, so a renewal the watch has not delivered yet makes it fail, and the lease is judged again.
 * Rejects with `signal.reason` when `signal` aborts.
 */
export async function releaseOnceExpired(
  first: LeaseJson,
  options: ReleaseWaitOptions,
): Promise<ReleaseOutcome> {
  const { api, monotonic, signal } = options
  const namespace = first.metadata?.namespace ?? ''
  const name = first.metadata?.name ?? ''
  const giveUpAt = monotonic() + options.timeoutMs
  let lease = first
  let previous: LeaseJson | undefined
  let observation: LeaseObservation = observe(undefined, leaseToRecord(lease), monotonic())
  let announced: LeaseObservation | undefined
  let changes = 0
  const seen = (next: LeaseJson) => {
    previous = lease
    lease = next
    changes++
    observation = observe(observation, leaseToRecord(next), monotonic())
  }
  for (;;) {
    signal.throwIfAborted()
    const record = observation.record
    if (!isManaged(record)) return { kind: 'not-managed', lease }
    if (isFree(record)) return changes === 0 ? { kind: 'free', lease } : { kind: 'released', lease }
    const expiry = expiresAt(observation, options.graceMs)
    if (expiry === Number.POSITIVE_INFINITY) return { kind: 'never-expires', lease }
    // From the rule's terms, not `expiry − firstSeenAt`: that difference of two monotonic readings
    // carries floating-point error, and the message rounds it up.
    const neededMs = (record.leaseDurationSeconds ?? 0) * 1000 + options.graceMs
    const now = monotonic()
    if (now >= expiry) {
      const freed = await api.replace(freedLease(lease, options.wallNow()), signal)
      if (freed !== undefined) return { kind: 'freed', lease, freed, neededMs }
      // Changed after the watch last reported it: read it and judge again.
      const again = await api.get(namespace, name, signal)
      if (again === undefined) return { kind: 'deleted' }
      seen(again)
      continue
    }
    if (now >= giveUpAt) return { kind: 'timed-out', lease, changes, neededMs }
    if (announced !== observation) {
      announced = observation
      options.onWait?.({ lease, previous, neededMs, expiresInMs: expiry - now, givesUpInMs: giveUpAt - now })
    }
    const next = await nextChange(api, lease, Math.min(expiry, giveUpAt), monotonic, signal)
    signal.throwIfAborted()
    if (next === 'unchanged') continue
    if (next === undefined) return { kind: 'deleted' }
    seen(next)
  }
}

/** A watch that the server ends sooner than this is not opened again at once. */
const REWATCH_DELAY_MS = 1_000

/**
 * Resolves with the lease as soon as it differs from `current` (`undefined` once deleted), or with
 * `'unchanged'` at monotonic time `until`. If the watch cannot run, it just waits: the write that follows
 * carries `current`'s preconditions, so a change it missed is still caught there.
 */
async function nextChange(
  api: ReleaseApi,
  current: LeaseJson,
  until: number,
  monotonic: () => number,
  signal: AbortSignal,
): Promise<LeaseJson | undefined | 'unchanged'> {
  const namespace = current.metadata?.namespace ?? ''
  const name = current.metadata?.name ?? ''
  const uid = current.metadata?.uid
  let resourceVersion = current.metadata?.resourceVersion ?? ''
  const stop = new AbortController()
  const onAbort = () => stop.abort()
  signal.addEventListener('abort', onAbort, { once: true })
  let timer = setClampedTimeout(function fire() {
    // Timers may fire early relative to the monotonic clock, and long ones are clamped: arm again.
    const left = until - monotonic()
    if (left > 0) timer = setClampedTimeout(fire, left)
    else stop.abort()
  }, until - monotonic())
  let changed: { lease: LeaseJson | undefined } | undefined
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stop.signal.aborted) return resolve()
      const wake = setClampedTimeout(done, ms)
      function done() {
        clearTimeout(wake)
        stop.signal.removeEventListener('abort', done)
        resolve()
      }
      stop.signal.addEventListener('abort', done, { once: true })
    })
  try {
    while (!stop.signal.aborted) {
      const openedAt = monotonic()
      try {
        await api.watch(
          namespace,
          {
            fieldSelector: `metadata.name=${name}`,
            resourceVersion,
          },
          (event) => {
            if (changed !== undefined) return
            if (event.type === 'BOOKMARK') {
              resourceVersion = event.resourceVersion
              return
            }
            const metadata = event.lease.metadata
            if (
              event.type !== 'DELETED' &&
              metadata?.uid === uid &&
              metadata?.resourceVersion === current.metadata?.resourceVersion
            ) {
              return
            }
            changed = { lease: event.type === 'DELETED' ? undefined : event.lease }
            stop.abort()
          },
          stop.signal,
        )
      } catch (error) {
        if (stop.signal.aborted) break
        if (!(error instanceof WatchExpiredError)) {
          // Unreachable or refused: wait without watching; the precondition of the write still holds.
          await sleep(until - monotonic())
          break
        }
        // Too far behind to watch from `current`: read it instead.
        const lease = await api.get(namespace, name, stop.signal).catch(() => current)
        if (
          lease === undefined ||
          lease.metadata?.uid !== uid ||
          lease.metadata?.resourceVersion !== current.metadata?.resourceVersion
        ) {
          changed ??= { lease }
          break
        }
        await sleep(until - monotonic())
        break
      }
      if (monotonic() - openedAt < REWATCH_DELAY_MS) await sleep(REWATCH_DELAY_MS)
    }
  } finally {
    clearTimeout(timer)
    signal.removeEventListener('abort', onAbort)
  }
  return changed === undefined ? 'unchanged' : changed.lease
}

/** Seconds, as help texts and messages write them: `22`, `0.5`. */
export function seconds(ms: number): string {
  return String(Number((ms / 1000).toFixed(3)))
}

/** An ISO time without milliseconds, `ms` from now by this machine's wall clock. */
function wallTimeIn(ctx: CliContext, ms: number): string {
  return new Date(ctx.now() + ms).toISOString().replace(/\.\d+Z$/, 'Z')
}

/**
 * What `release` says on stderr when it starts to wait for `subject` (a lock, or one holder's record)
 * to expire, and again after each change of it.
 */
export function waitMessage(
  ctx: CliContext,
  subject: string,
  wait: ReleaseWait,
  graceMs: number,
  timeoutMs: number,
): string {
  const heldBy = wait.lease.spec?.holderIdentity ?? ''
  const change = `(resourceVersion ${wait.previous?.metadata?.resourceVersion} -> ${wait.lease.metadata?.resourceVersion})`
  const what =
    wait.previous === undefined
      ? `is held by \`${heldBy}\`: waiting`
      : wait.previous.spec?.holderIdentity === heldBy
        ? `was renewed by \`${heldBy}\` ${change}: waiting again`
        : `is now held by \`${heldBy}\` ${change}: waiting again`
  const rule = `${seconds(wait.neededMs)} s (its duration ${seconds(wait.neededMs - graceMs)} s + grace ${seconds(graceMs)} s)`
  const until =
    wait.expiresInMs <= wait.givesUpInMs
      ? `, that is until ${wallTimeIn(ctx, wait.expiresInMs)} by this machine's clock; a renewal starts the wait again; --timeout ends it at ${wallTimeIn(ctx, wait.givesUpInMs)}`
      : `; that is past --timeout (${seconds(timeoutMs)} s), so it waits only for the holder to release it, until ${wallTimeIn(ctx, wait.givesUpInMs)}`
  return `${subject} ${what} until this machine has seen its lease unchanged for ${rule}${until}`
}
