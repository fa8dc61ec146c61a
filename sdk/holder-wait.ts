import type { Clock, Logger } from './clock.ts'
import { LockUnavailableError } from './errors.ts'
import { expiresAt } from './expiry.ts'
import { HolderSightings, holderSelector, isHolderRecordOf, isLive } from './holders.ts'
import type { LeaseRecord } from './lease-record.ts'
import type { LeaseStore } from './lease-store.ts'
import { backoff, Wakeup, withRequestDeadline } from './timers.ts'
import type { WatchHub } from './watch-hub.ts'

export interface HolderWaitContext {
  readonly store: LeaseStore
  readonly hub: WatchHub
  readonly namespace: string
  readonly leaseName: string
  readonly lockName: string
  readonly clock: Clock
  readonly logger: Logger
  readonly graceMs: number
  readonly requestTimeoutMs: number
  readonly retryIntervalMs: number
  /** Monotonic milliseconds at which the call gives up. */
  readonly deadline: number
  /** `timeout: 0`: one look, no waiting. */
  readonly once: boolean
  /** The caller's signal and the client's close signal. */
  readonly signals: readonly AbortSignal[]
  readonly timedOut: (holder: string | undefined) => Error
}

/**
 * The exclusive acquirer's wait for holder records: lists them once (consistently, after its
 * acquiring write), then waits until every live record of that list is gone or expired. Records
 * created after the list back off on their own, seeing the lease held.
 */
export async function waitForHolders(ctx: HolderWaitContext): Promise<void> {
  const { store, namespace, leaseName, hub, clock, graceMs } = ctx
  const sightings = new HolderSightings()
  const wakeup = new Wakeup()
  // Subscribed only once something is to be waited for: most exclusive acquisitions find nothing.
  let stop: (() => void) | undefined
  let listed: Set<string> | undefined
  let failures = 0
  try {
    for (;;) {
      let items: readonly LeaseRecord[]
      try {
        const list = await withRequestDeadline(
          (signal) => store.list(namespace, { labelSelector: holderSelector(leaseName), signal }),
          {
            ms: ctx.once
              ? ctx.requestTimeoutMs
              : Math.max(1, Math.min(ctx.requestTimeoutMs, ctx.deadline - clock.now())),
            server: store.server,
            signal: AbortSignal.any([...ctx.signals]),
          },
        )
        items = list.items.filter((r) => isHolderRecordOf(r, leaseName))
        failures = 0
      } catch (error) {
        if (!(error instanceof LockUnavailableError)) throw error
        const delay = backoff(++failures, { baseMs: ctx.retryIntervalMs, atLeastMs: error.retryAfterMs })
        if (ctx.once || clock.now() + delay >= ctx.deadline) throw error
        await wakeup.sleep(delay, ctx.signals, false)
        continue
      }
      const now = clock.now()
      const seen = sightings.see(items, now)
      listed ??= new Set(seen.filter((o) => isLive(o, now, graceMs)).map((o) => o.record.name))
      const blocking = seen.filter((o) => listed?.has(o.record.name) && isLive(o, now, graceMs))
      if (blocking.length === 0) return
      const holder = blocking[0]?.record.holderIdentity
      if (ctx.once || now >= ctx.deadline) throw ctx.timedOut(holder)
      if (stop === undefined) {
        // A change between the list and the subscription would be missed: list once more.
        stop = hub.subscribeHolders(leaseName, () => wakeup.notify())
        continue
      }
      const expiry = Math.min(...blocking.map((o) => expiresAt(o, graceMs)))
      // Sleep until a listed record may have gone (the hub's view says so, or cannot tell) or expired.
      for (;;) {
        const left = Math.min(ctx.deadline, expiry) - clock.now()
        if (left <= 0) break
        const pollMs = hub.failing ? backoff(1, { baseMs: ctx.retryIntervalMs }) : Number.POSITIVE_INFINITY
        const notified = await wakeup.sleep(Math.min(left, pollMs), ctx.signals, true)
        if (!notified) break
        const known = hub.holders(leaseName)
        if (known === undefined) break
        const stillThere = new Map(known.map((r) => [r.name, r]))
        const gone = blocking.some((o) => {
          const current = stillThere.get(o.record.name)
          return current === undefined || current.resourceVersion !== o.record.resourceVersion
        })
        if (gone) break
      }
    }
  } finally {
    stop?.()
    wakeup.dispose()
  }
}
