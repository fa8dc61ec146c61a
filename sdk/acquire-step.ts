import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, MODE_ANNOTATION } from './constants.ts'
import { LeaseConflictError, LeaseNotManagedError, LockUnavailableError } from './errors.ts'
import type { LeaseObservation } from './expiry.ts'
import { expiresAt, observe } from './expiry.ts'
import { EXCLUSIVE_MARK, isHolderRecord } from './holders.ts'
import type { LeaseDraft, LeaseRecord } from './lease-record.ts'
import { isFree, isManaged, withoutHolderAnnotations } from './lease-record.ts'
import type { LeaseStore } from './lease-store.ts'
import { formatMicroTime } from './micro-time.ts'
import { isTicket } from './ticket.ts'

/**
 * One attempt to acquire a lock: read the lease if its state is unknown, then create it, take it over,
 * or report it held. The waiting between attempts lives in the caller; this function makes at most one
 * read and one write, so a table of cases covers it.
 */

/** What the acquirer knows about the lease before a step. */
export type LeaseView = 'unknown' | 'absent' | LeaseObservation

export interface AcquireState {
  readonly view: LeaseView
  /**
   * Monotonic time at which the earliest write with an unknown outcome (a timeout or 5xx) was sent. If
   * a later read shows this acquisition as the holder, that write applied, and the holder's deadline
   * counts from this time.
   */
  readonly pendingSentAt: number | undefined
  /**
   * The last observation while `view` is `unknown`: a read that finds the same resourceVersion keeps
   * its first-seen time, so re-reading (polling) never postpones expiry.
   */
  readonly previous?: LeaseObservation | undefined
}

export const INITIAL_STATE: AcquireState = Object.freeze({ view: 'unknown', pendingSentAt: undefined })

/** The state after which the lease must be read again, keeping what was seen of it. */
export function forgetView(state: AcquireState): AcquireState {
  const previous = typeof state.view === 'object' ? state.view : state.previous
  return { view: 'unknown', pendingSentAt: state.pendingSentAt, previous }
}

export interface StepContext {
  readonly store: LeaseStore
  readonly namespace: string
  readonly leaseName: string
  /** Unique per acquisition, so a read can tell whether a write with an unknown outcome applied. */
  readonly identity: string
  readonly leaseDurationSeconds: number
  /** `kube-locks.io/name` and the holder annotations known for this process. */
  readonly annotations: Readonly<Record<string, string>>
  readonly graceMs: number
  readonly now: () => number
  readonly wallNow: () => number
  /** Aborts the read. */
  readonly signal?: AbortSignal | undefined
  /**
   * The signal for a write, asked for right before it is sent. A write is never cut short by the
   * caller's deadline: its answer is what tells whether it applied.
   * @default `signal`
   */
  readonly writeSignal?: (() => AbortSignal) | undefined
  /**
   * Milliseconds a lock stays valid after its acquiring write was sent (`expires` − safety margin). A
   * read that took that long predicts a lock lost before its holder hears it was acquired.
   * @default no limit
   */
  readonly validForMs?: number | undefined
  /**
   * Asked right before a write that would take the lock (create, or take over a free or expired
   * lease): `false` means others wait in line before this acquisition, and no write is sent. A read-back
   * of a write of ours that applied is never held back: that lease is ours already.
   * @default always `true` (no line)
   */
  readonly mayTake?: ((view: 'absent' | LeaseObservation) => boolean | Promise<boolean>) | undefined
}

export type StepResult =
  | {
      readonly kind: 'acquired'
      readonly record: LeaseRecord
      readonly sentAt: number
      /** True when a read found the lease ours (a write whose answer was lost applied). */
      readonly readBack: boolean
    }
  | {
      readonly kind: 'held'
      readonly state: AcquireState
      readonly observation: LeaseObservation
      readonly expiresAt: number
    }
  /** A lost compare-and-swap: read again at once. */
  | { readonly kind: 'conflict'; readonly state: AcquireState; readonly error: LeaseConflictError }
  /** The API failed: wait (with jitter) and read again. */
  | { readonly kind: 'unavailable'; readonly state: AcquireState; readonly error: LockUnavailableError }
  /** A read took longer than a lock stays valid: no write was sent. */
  | { readonly kind: 'too-slow'; readonly state: AcquireState; readonly roundTripMs: number }
  /** The lock could be taken, but `mayTake` said others are ahead in line: no write was sent. */
  | { readonly kind: 'queued'; readonly state: AcquireState }

export async function acquireStep(ctx: StepContext, state: AcquireState): Promise<StepResult> {
  let view = state.view
  if (view === 'unknown') {
    let record: LeaseRecord | undefined
    const readAt = ctx.now()
    try {
      record = await ctx.store.get(ctx.namespace, ctx.leaseName, { signal: ctx.signal })
    } catch (error) {
      if (error instanceof LockUnavailableError) return { kind: 'unavailable', state, error }
      throw error
    }
    view = record === undefined ? 'absent' : observe(state.previous, record, ctx.now())
    const roundTripMs = ctx.now() - readAt
    if (ctx.validForMs !== undefined && roundTripMs >= ctx.validForMs) {
      return { kind: 'too-slow', state: { ...state, view }, roundTripMs }
    }
  }
  // A ticket (a waiter's place in some lock's line) or a holder record is not a lock, whatever its name.
  if (
    view !== 'absent' &&
    (!isManaged(view.record) || isTicket(view.record) || isHolderRecord(view.record))
  ) {
    throw new LeaseNotManagedError({
      leaseName: ctx.leaseName,
      namespace: ctx.namespace,
      holder: view.record.holderIdentity,
    })
  }
  const writeSignal = () => ctx.writeSignal?.() ?? ctx.signal

  if (view === 'absent') {
    if (ctx.mayTake !== undefined && !(await ctx.mayTake(view))) {
      return { kind: 'queued', state: { ...state, view } }
    }
    const sentAt = ctx.now()
    const time = formatMicroTime(ctx.wallNow())
    const draft: LeaseDraft = {
      namespace: ctx.namespace,
      name: ctx.leaseName,
      holderIdentity: ctx.identity,
      leaseDurationSeconds: ctx.leaseDurationSeconds,
      acquireTime: time,
      renewTime: time,
      leaseTransitions: 0,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      // Marked until this acquirer has looked for shared holders (see `mayHaveHolders`).
      annotations: { ...ctx.annotations, [MODE_ANNOTATION]: EXCLUSIVE_MARK },
    }
    return write({ ...state, view }, sentAt, () => ctx.store.create(draft, { signal: writeSignal() }))
  }

  const { record } = view
  if (record.holderIdentity === ctx.identity && state.pendingSentAt !== undefined) {
    // Only a write of this acquisition names it (the identity carries 128 random bits): the lease must
    // come from a write whose answer was lost, sent no earlier than the earliest such write. Without
    // such a write on record the match proves nothing, and the lease counts as someone else's.
    return { kind: 'acquired', record, sentAt: state.pendingSentAt, readBack: true }
  }
  const takeOverAt = expiresAt(view, ctx.graceMs)
  if (isFree(record) || ctx.now() >= takeOverAt) {
    if (ctx.mayTake !== undefined && !(await ctx.mayTake(view))) {
      return { kind: 'queued', state: { ...state, view } }
    }
    const sentAt = ctx.now()
    const time = formatMicroTime(ctx.wallNow())
    const next: LeaseRecord = {
      ...record,
      holderIdentity: ctx.identity,
      leaseDurationSeconds: ctx.leaseDurationSeconds,
      acquireTime: time,
      renewTime: time,
      leaseTransitions: (record.leaseTransitions ?? 0) + 1,
      labels: { ...record.labels, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: { ...withoutHolderAnnotations(record.annotations), ...ctx.annotations },
    }
    // The update carries uid and resourceVersion: it applies only if the lease is still exactly what
    // was observed — in particular not renewed since it was first seen.
    return write({ ...state, view }, sentAt, () => ctx.store.update(next, { signal: writeSignal() }))
  }
  return { kind: 'held', state: { ...state, view }, observation: view, expiresAt: takeOverAt }
}

async function write(
  state: AcquireState,
  sentAt: number,
  send: () => Promise<LeaseRecord>,
): Promise<StepResult> {
  try {
    // The answer proves this write produced the lease (compare-and-swap: no earlier write of ours can
    // apply after it), so the deadline counts from this send, whatever is pending.
    const record = await send()
    return { kind: 'acquired', record, sentAt, readBack: false }
  } catch (error) {
    if (error instanceof LeaseConflictError) {
      return { kind: 'conflict', state: forgetView(state), error }
    }
    if (error instanceof LockUnavailableError) {
      const pendingSentAt = error.outcomeUnknown ? (state.pendingSentAt ?? sentAt) : state.pendingSentAt
      return { kind: 'unavailable', state: { ...forgetView(state), pendingSentAt }, error }
    }
    throw error
  }
}
