import { randomBytes } from 'node:crypto'
import { formatMicroTime, LockApiError, type Logger, setClampedTimeout } from '../sdk/internal.ts'
import type { ControllerMetrics } from './metrics.ts'

export const EVENT_REASONS = ['LockExpired', 'LockReclaimed', 'LockGarbageCollected'] as const
export type EventReason = (typeof EVENT_REASONS)[number]

/** Reporting controller of every Event (events.k8s.io/v1 wants a qualified name). */
export const REPORTING_CONTROLLER = 'kube-locks.io/controller'

export interface LockEvent {
  readonly reason: EventReason
  readonly type: 'Normal' | 'Warning'
  /** What the controller did or saw, in one word (`Reclaim`, `Delete`). */
  readonly action: string
  readonly note: string
  readonly lease: { readonly namespace: string; readonly name: string; readonly uid: string }
}

/** An events.k8s.io/v1 Event as written and read back; times are MicroTime strings. */
export interface EventObject {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly [key: string]: unknown }
  readonly series?: { readonly count: number; readonly lastObservedTime?: string } | undefined
  readonly reason?: string
  readonly regarding?: { readonly name?: string; readonly [key: string]: unknown }
  readonly [key: string]: unknown
}

/** Where Events go: the API server, or a fake in tests. */
export interface EventSink {
  create(event: EventObject, signal: AbortSignal): Promise<EventObject>
  /**
   * Writes the Event's `series` (the rest of an Event is immutable); rejects with a `LockApiError` of
   * status 404 if it is gone (Events expire), 409 if someone else changed it.
   */
  update(event: EventObject, signal: AbortSignal): Promise<EventObject>
}

export interface EventRecorderOptions {
  readonly sink: EventSink
  readonly metrics: ControllerMetrics
  readonly logger: Logger
  /** Monotonic milliseconds. */
  readonly now: () => number
  readonly reportingInstance: string
  /**
   * Occurrences of the same reason on the same lease within this window extend one Event's `series`
   * instead of creating Events. Defaults to 10 minutes.
   */
  readonly seriesWindowMs?: number
  /** Least time between two writes of the same Event; occurrences in between are counted. Defaults to 10 s. */
  readonly minIntervalMs?: number
  /** Event writes allowed at once across all leases. Defaults to 25. */
  readonly burst?: number
  /** Event writes per second once the burst is spent. Defaults to 5. */
  readonly qps?: number
  /** Longest wait for one Event write. Defaults to 10 s. */
  readonly requestTimeoutMs?: number
}

interface SeriesState {
  readonly key: string
  readonly base: LockEvent
  note: string
  count: number
  written: number
  lastOccurrence: number
  lastWrite: number
  event: EventObject | undefined
  timer: ReturnType<typeof setTimeout> | undefined
  writing: boolean
}

/**
 * Records Events on Leases without letting a hot lock flood the API server: each (lease, reason) has
 * one Event whose `series.count` grows, written at most once per `minIntervalMs`; all writes share a
 * token bucket, and writes the bucket refuses are deferred (series) or dropped and counted (new Events).
 * Recording never blocks the caller.
 */
export class EventRecorder {
  readonly #options: Required<EventRecorderOptions>
  readonly #series = new Map<string, SeriesState>()
  readonly #inFlight = new Set<Promise<void>>()
  readonly #abort = new AbortController()
  #tokens: number
  #refilledAt: number
  #sweptAt: number
  #stopped = false

  constructor(options: EventRecorderOptions) {
    this.#options = {
      seriesWindowMs: 10 * 60_000,
      minIntervalMs: 10_000,
      burst: 25,
      qps: 5,
      requestTimeoutMs: 10_000,
      ...options,
    }
    this.#tokens = this.#options.burst
    this.#refilledAt = options.now()
    this.#sweptAt = options.now()
  }

  record(event: LockEvent): void {
    if (this.#stopped) return
    const now = this.#options.now()
    this.#options.metrics.events.inc({ reason: event.reason })
    this.#sweep(now)
    const key = `${event.lease.namespace}/${event.lease.name}/${event.lease.uid}/${event.reason}`
    const state = this.#series.get(key)
    if (state === undefined || now - state.lastOccurrence > this.#options.seriesWindowMs) {
      if (state?.timer !== undefined) clearTimeout(state.timer)
      const fresh: SeriesState = {
        key,
        base: event,
        note: event.note,
        count: 1,
        written: 0,
        lastOccurrence: now,
        lastWrite: Number.NEGATIVE_INFINITY,
        event: undefined,
        timer: undefined,
        writing: false,
      }
      this.#series.set(key, fresh)
      this.#flush(fresh)
      return
    }
    state.count += 1
    state.note = event.note
    state.lastOccurrence = now
    this.#schedule(state)
  }

  /**
   * Writes the counts still deferred (once each, within the request timeout), awaits writes in flight,
   * and records nothing more.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return
    for (const state of this.#series.values()) {
      if (state.timer !== undefined) clearTimeout(state.timer)
      state.timer = undefined
      this.#flush(state)
    }
    this.#stopped = true
    // A flush the budget refused above may have scheduled a retry.
    for (const state of this.#series.values()) {
      if (state.timer !== undefined) clearTimeout(state.timer)
      state.timer = undefined
    }
    await Promise.allSettled([...this.#inFlight])
    this.#abort.abort()
  }

  #schedule(state: SeriesState): void {
    if (state.timer !== undefined || state.writing || this.#stopped) return
    const delay = Math.max(0, state.lastWrite + this.#options.minIntervalMs - this.#options.now())
    state.timer = setClampedTimeout(() => {
      state.timer = undefined
      this.#flush(state)
    }, delay)
  }

  #flush(state: SeriesState): void {
    if (this.#stopped || state.writing || state.count === state.written) return
    if (!this.#take()) {
      if (state.event === undefined && state.written === 0) {
        // A new Event that the budget refuses is dropped; later occurrences of it try again.
        this.#options.metrics.eventsDropped.inc({ reason: state.base.reason })
        this.#series.delete(state.key)
        return
      }
      state.lastWrite = this.#options.now()
      this.#schedule(state)
      return
    }
    state.writing = true
    const count = state.count
    const task = this.#write(state, count).then(
      (written) => {
        state.event = written
        state.written = count
      },
      (error: unknown) => {
        this.#options.metrics.eventsDropped.inc({ reason: state.base.reason })
        this.#options.logger.warn?.('could not write an Event', {
          reason: state.base.reason,
          namespace: state.base.lease.namespace,
          lease: state.base.lease.name,
          error,
        })
        // The occurrences are not lost: the next flush writes the whole count.
      },
    )
    const tracked = task.finally(() => {
      this.#inFlight.delete(tracked)
      state.writing = false
      state.lastWrite = this.#options.now()
      if (state.count !== state.written) this.#schedule(state)
    })
    this.#inFlight.add(tracked)
  }

  async #write(state: SeriesState, count: number): Promise<EventObject> {
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#options.requestTimeoutMs)])
    const now = formatMicroTime(Date.now())
    const series = count > 1 ? { count, lastObservedTime: now } : undefined
    if (state.event !== undefined) {
      try {
        return await this.#options.sink.update({ ...state.event, series }, signal)
      } catch (error) {
        const status = error instanceof LockApiError ? error.status : undefined
        if (status !== 404 && status !== 409) throw error
        // Expired (Events have a TTL) or changed by someone else: start a new Event with the count.
      }
    }
    const { base } = state
    return this.#options.sink.create(
      {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name: eventName(base.lease.name), namespace: base.lease.namespace },
        eventTime: now,
        reason: base.reason,
        type: base.type,
        action: base.action,
        note: state.note.slice(0, 1024),
        regarding: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          namespace: base.lease.namespace,
          name: base.lease.name,
          uid: base.lease.uid,
        },
        reportingController: REPORTING_CONTROLLER,
        reportingInstance: this.#options.reportingInstance.slice(0, 128),
        ...(series === undefined ? {} : { series }),
      },
      signal,
    )
  }

  #take(): boolean {
    const now = this.#options.now()
    const refill = ((now - this.#refilledAt) / 1000) * this.#options.qps
    this.#tokens = Math.min(this.#options.burst, this.#tokens + refill)
    this.#refilledAt = now
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }

  #sweep(now: number): void {
    if (now - this.#sweptAt < 60_000) return
    this.#sweptAt = now
    for (const [key, state] of this.#series) {
      const idle = now - state.lastOccurrence > this.#options.seriesWindowMs
      if (idle && state.timer === undefined && !state.writing) this.#series.delete(key)
    }
  }
}

/** `<lease>.<random>`, cut so the whole stays a valid DNS-1123 subdomain of at most 253 characters. */
function eventName(leaseName: string): string {
  const prefix = leaseName.slice(0, 253 - 17).replace(/[-.]+$/, '')
  return `${prefix}.${randomBytes(8).toString('hex')}`
}
