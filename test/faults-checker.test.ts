import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { leaseNameFor, newTicketName } from '../sdk/internal.ts'
import { checkHistory } from './faults/checker.ts'
import { commitResource, initResource, readResource } from './faults/fenced-resource.ts'
import type { History, Hold, Write } from './faults/history.ts'
import { type HoldRecord, judgeHold, type Pause } from './faults/holds.ts'
import { type Acquisition, type CreateRecord, isTicketNameOf, judgeOrder, placeOf } from './faults/order.ts'
import { measureTimebase, overlapToleranceMs, TIMEBASE } from './faults/timebase.ts'

// The checker, the hold cut-offs and the fenced resource are what every fault test relies on to fail:
// these synthetic histories plant each kind of violation and show that it is caught, and that clean
// histories pass. No cluster needed.

const hold = (worker: string, token: string, start: number, end: number | undefined, lock = 'l'): Hold => ({
  lock,
  worker,
  holder: `${worker}-holder`,
  token,
  start,
  end,
  endedBy: end === undefined ? undefined : 'released',
})

const write = (
  worker: string,
  token: string,
  readVersion: number,
  outcome: Write['outcome'],
  late = false,
): Write => ({ lock: 'l', worker, token, readVersion, readCounter: readVersion, outcome, late })

const clean: History = {
  holds: [hold('a', '10', 0, 100), hold('b', '12', 150, 300), hold('c', '20', 310, 400)],
  writes: [
    write('a', '10', 0, 'committed'),
    write('b', '12', 1, 'committed'),
    write('c', '20', 2, 'committed'),
  ],
  counters: { l: 3 },
}

const kinds = (history: History, toleranceMs = 10) =>
  checkHistory(history, { toleranceMs }).violations.map((v) => v.kind)

describe('fault checker', () => {
  it('passes a clean history', () => {
    expect(checkHistory(clean, { toleranceMs: 10 })).toMatchObject({ violations: [], holds: 3, committed: 3 })
  })

  it('catches two valid holds that overlap, but not an overlap within the tolerance', () => {
    const overlapping = { ...clean, holds: [hold('a', '10', 0, 200), hold('b', '12', 150, 300)] }
    expect(kinds(overlapping)).toEqual(['overlap'])
    expect(kinds(overlapping, 60)).toEqual([])
    // A hold that never ended overlaps every later one on the same lock.
    expect(kinds({ ...clean, holds: [hold('a', '10', 0, undefined), hold('b', '12', 150, 300)] })).toEqual([
      'overlap',
    ])
    // Holds of different locks are independent.
    expect(kinds({ ...clean, holds: [hold('a', '10', 0, 200), hold('b', '12', 150, 300, 'other')] })).toEqual(
      [],
    )
  })

  it('catches a fencing token that does not increase, compared as BigInt', () => {
    expect(kinds({ ...clean, holds: [hold('a', '12', 0, 100), hold('b', '10', 150, 300)] })).toEqual([
      'token-order',
    ])
    expect(kinds({ ...clean, holds: [hold('a', '12', 0, 100), hold('b', '12', 150, 300)] })).toEqual([
      'duplicate-token',
    ])
    // 2^53 + 1 and 2^53 are equal as Numbers.
    const big = [hold('a', '9007199254740993', 0, 100), hold('b', '9007199254740992', 150, 300)]
    expect(kinds({ ...clean, holds: big })).toEqual(['token-order'])
    // Decimal strings of different lengths are not compared lexically.
    expect(kinds({ ...clean, holds: [hold('a', '9', 0, 100), hold('b', '10', 150, 300)] })).toEqual([])
  })

  it('catches lost updates, races, valid writes refused by the fence, and a wrong counter', () => {
    expect(kinds({ ...clean, writes: [...clean.writes, write('d', '20', 1, 'lost-update')] })).toEqual([
      'lost-update',
    ])
    expect(kinds({ ...clean, writes: [...clean.writes, write('d', '20', 2, 'race')] })).toEqual(['race'])
    expect(kinds({ ...clean, writes: [...clean.writes, write('d', '5', 2, 'fenced')] })).toEqual([
      'valid-write-fenced',
    ])
    // A late write (after the signal fired) is supposed to be refused.
    expect(kinds({ ...clean, writes: [...clean.writes, write('d', '5', 2, 'fenced', true)] })).toEqual([])
    expect(kinds({ ...clean, counters: { l: 2 } })).toEqual(['counter'])
    expect(kinds({ ...clean, counters: { l: 4 } })).toEqual(['counter'])
    // A writer killed between read and report may or may not have written.
    expect(kinds({ ...clean, counters: { l: 4 }, unresolvedWrites: { l: 1 } })).toEqual([])
  })
})

const slot = (worker: string, token: string, start: number, end: number | undefined, limit = 2): Hold => ({
  ...hold(worker, token, start, end),
  mode: { kind: 'semaphore', limit },
})
const reader = (worker: string, token: string, start: number, end: number | undefined): Hold => ({
  ...hold(worker, token, start, end),
  mode: { kind: 'shared' },
})
const holdsOnly = (holds: Hold[]): History => ({ holds, writes: [], counters: {} })

describe('fault checker: semaphores and shared locks', () => {
  it('passes `limit` semaphore holds at once, and reports the peak', () => {
    const holds = [slot('a', '10', 0, 200), slot('b', '12', 50, 300), slot('c', '14', 200, 400)]
    const result = checkHistory(holdsOnly(holds), { toleranceMs: 10 })
    expect(result.violations).toEqual([])
    expect(result.peaks).toEqual({ l: 2 })
    // The same holds as plain locks overlap.
    const plain = holds.map(({ mode: _, ...h }) => h)
    expect(kinds(holdsOnly(plain))).toEqual(['overlap', 'overlap'])
    expect(checkHistory(holdsOnly(plain), { toleranceMs: 10 }).peaks).toEqual({ l: 2 })
  })

  it('catches one semaphore hold more than the limit, but not beyond the tolerance', () => {
    const three = [slot('a', '10', 0, 200), slot('b', '12', 50, 300), slot('c', '14', 150, 400)]
    const [violation, ...rest] = checkHistory(holdsOnly(three), { toleranceMs: 10 }).violations
    expect(rest).toEqual([])
    expect(violation).toMatchObject({ kind: 'over-limit', limit: 2 })
    expect(violation?.kind === 'over-limit' && violation.holds.map((h) => h.worker)).toEqual(['a', 'b', 'c'])
    expect(checkHistory(holdsOnly(three), { toleranceMs: 10 }).peaks).toEqual({ l: 3 })
    // With limit 3 they fit.
    const roomy = three.map((h) => ({ ...h, mode: { kind: 'semaphore' as const, limit: 3 } }))
    expect(kinds(holdsOnly(roomy))).toEqual([])
    // `a` ends 5 ms after `c` begins: within a tolerance of 10 ms, not within one of 1 ms.
    const touching = [slot('a', '10', 0, 155), slot('b', '12', 50, 300), slot('c', '14', 150, 400)]
    expect(kinds(holdsOnly(touching))).toEqual([])
    expect(kinds(holdsOnly(touching), 1)).toEqual(['over-limit'])
    // A slot that never ended keeps counting.
    const open = [slot('a', '10', 0, undefined), slot('b', '12', 50, 100), slot('c', '14', 500, 600)]
    expect(kinds(holdsOnly([...open, slot('d', '16', 550, 700)]))).toEqual(['over-limit'])
  })

  it('lets shared holds overlap each other, and nothing else', () => {
    const readers = [reader('a', '10', 0, 200), reader('b', '12', 50, 300), reader('c', '14', 100, 400)]
    const result = checkHistory(holdsOnly(readers), { toleranceMs: 10 })
    expect(result.violations).toEqual([])
    expect(result.peaks).toEqual({ l: 3 })
    // A writer among the readers overlaps each reader still in.
    expect(kinds(holdsOnly([...readers, hold('w', '20', 250, 500)]))).toEqual(['overlap', 'overlap'])
    // A writer after the last reader left does not.
    expect(kinds(holdsOnly([...readers, hold('w', '20', 400, 500)]))).toEqual([])
    // Readers with semaphore slots, or semaphores of different limits, exclude each other.
    expect(kinds(holdsOnly([reader('a', '10', 0, 200), slot('b', '12', 50, 300)]))).toEqual(['overlap'])
    expect(kinds(holdsOnly([slot('a', '10', 0, 200, 2), slot('b', '12', 50, 300, 3)]))).toEqual(['overlap'])
  })

  it('orders tokens in every pair with an exclusive hold, and not among concurrent holders', () => {
    // Slots and readers that began in the other order of their tokens: not ordered among themselves.
    expect(kinds(holdsOnly([slot('a', '12', 0, 200), slot('b', '10', 50, 300)]))).toEqual([])
    expect(kinds(holdsOnly([reader('a', '12', 0, 200), reader('b', '10', 50, 300)]))).toEqual([])
    // A writer's token exceeds every token before it, the readers' as well.
    const readers = [reader('a', '10', 0, 200), reader('b', '30', 50, 300)]
    expect(kinds(holdsOnly([...readers, hold('w', '20', 400, 500)]))).toEqual(['token-order'])
    expect(kinds(holdsOnly([...readers, hold('w', '40', 400, 500)]))).toEqual([])
    // A reader's token exceeds every writer's before it...
    expect(kinds(holdsOnly([hold('w', '40', 0, 100), reader('a', '30', 200, 300)]))).toEqual(['token-order'])
    // ...and a writer after it has the larger one, beyond 2^53 too.
    const big = [slot('a', '9007199254740993', 0, 100), hold('w', '9007199254740992', 200, 300)]
    expect(kinds(holdsOnly(big))).toEqual(['token-order'])
    // A writer never shares its token; readers and slots may share one (the lock lease's, as read).
    expect(kinds(holdsOnly([reader('a', '10', 0, 200), hold('w', '10', 250, 300)]))).toEqual([
      'duplicate-token',
    ])
    expect(kinds(holdsOnly([reader('a', '10', 0, 200), reader('b', '10', 50, 300)]))).toEqual([])
    expect(kinds(holdsOnly([slot('a', '10', 0, 200), slot('b', '10', 250, 300)]))).toEqual([])
  })
})

describe('fenced resource', () => {
  let root: string | undefined
  afterEach(() => {
    if (root) rmSync(root, { recursive: true, force: true })
  })

  it('commits in order, refuses lower tokens, and detects interleaved read–modify–writes', () => {
    root = mkdtempSync(join(tmpdir(), 'kube-locks-fenced-'))
    initResource(root, 'lock/ä')
    initResource(root, 'lock/ä')
    const first = readResource(root, 'lock/ä')
    expect(first).toEqual({ version: 0, counter: 0, token: '0' })
    expect(commitResource(root, 'lock/ä', '100', first, 'a')).toBe('committed')
    // A second writer that read the same version lost its update.
    expect(commitResource(root, 'lock/ä', '100', first, 'b')).toBe('lost-update')
    const second = readResource(root, 'lock/ä')
    expect(second).toEqual({ version: 1, counter: 1, token: '100' })
    // A stale holder with a lower token is fenced off, even with a fresh read.
    expect(commitResource(root, 'lock/ä', '99', second, 'c')).toBe('fenced')
    expect(commitResource(root, 'lock/ä', '101', second, 'd')).toBe('committed')
    expect(readResource(root, 'lock/ä')).toEqual({ version: 2, counter: 2, token: '101' })
  })
})

describe('fault checker: small overlaps at the measured tolerance', () => {
  const tolerance = overlapToleranceMs()

  it('derives the tolerance from the measured timebase error: microseconds, not milliseconds', () => {
    expect(TIMEBASE.errorMs).toBeGreaterThanOrEqual(0)
    expect(tolerance).toBe(Math.max(2 * TIMEBASE.errorMs, 0.001))
    expect(tolerance).toBeLessThan(0.5)
    // The offset measured again agrees within the bound.
    const again = measureTimebase()
    expect(Math.abs(again.offsetMs - TIMEBASE.offsetMs)).toBeLessThanOrEqual(
      again.errorMs + TIMEBASE.errorMs + 0.001,
    )
  })

  it.each([1, 2, 3, 5])('catches an overlap of %i ms', (ms) => {
    const holds = [hold('a', '10', 0, 100 + ms), hold('b', '12', 100, 300)]
    const violations = checkHistory({ ...clean, holds }, { toleranceMs: tolerance }).violations
    expect(violations.map((v) => v.kind)).toEqual(['overlap'])
    expect(violations[0]).toMatchObject({ byMs: ms })
  })

  it('passes holds that touch, and a token order reversed by less than the tolerance', () => {
    const holds = [hold('a', '10', 0, 100), hold('b', '12', 100, 300)]
    expect(checkHistory({ ...clean, holds }, { toleranceMs: tolerance }).violations).toEqual([])
    const close = [hold('a', '10', 100, 150), hold('b', '12', 100 - tolerance / 2, 300)]
    expect(kinds({ ...clean, holds: close }, tolerance).filter((k) => k === 'token-order')).toEqual([])
    const reversed = [hold('a', '10', 100, 150), hold('b', '12', 98, 300)]
    expect(kinds({ ...clean, holds: reversed }, tolerance)).toContain('token-order')
  })
})

// A hold with a documented bound: last write sent at 0, valid for 2 700 ms.
const bounded = (fields: Partial<Hold>): Hold => ({
  ...hold('a', '10', 5, undefined),
  due: 2_700,
  ...fields,
})
const signalKinds = (h: Hold, now = 10_000) =>
  checkHistory({ ...clean, holds: [h] }, { toleranceMs: 0.001, now }).violations.map((v) => v.kind)

describe('fault checker: the signal against its documented bound', () => {
  it('passes a signal at or before the bound, and one a turn after its probe', () => {
    expect(signalKinds(bounded({ end: 2_699, signalAt: 2_699 }))).toEqual([])
    expect(signalKinds(bounded({ end: 2_740, signalAt: 2_740, probeAt: 2_701 }))).toEqual([])
    // The probe itself ran 120 ms late (a loaded loop): one more such turn is allowed.
    expect(signalKinds(bounded({ end: 2_930, signalAt: 2_930, probeAt: 2_820 }))).toEqual([])
  })

  it('catches a signal that fires later than sendTime + expires − margin', () => {
    // The probe ran 1 ms late; the signal 400 ms (a margin of 0 instead of 10 %).
    expect(signalKinds(bounded({ end: 3_100, signalAt: 3_100, probeAt: 2_701 }))).toEqual(['late-signal'])
    const [violation] = checkHistory(
      { ...clean, holds: [bounded({ end: 3_100, signalAt: 3_100, probeAt: 2_701 })] },
      { toleranceMs: 0.001 },
    ).violations
    expect(violation).toMatchObject({ kind: 'late-signal', lateMs: 400, never: false })
  })

  it('catches a signal that never fires, probe or no probe', () => {
    expect(signalKinds(bounded({ probeAt: 2_701 }))).toEqual(['late-signal'])
    expect(signalKinds(bounded({}))).toEqual(['late-signal'])
    // Not yet: within the time a report takes to arrive.
    expect(signalKinds(bounded({}), 3_000)).toEqual([])
    // A process that died before its signal was due had nothing left to fire.
    expect(signalKinds(bounded({ end: 2_000, exitedAt: 2_000 }))).toEqual([])
    // One that died after the probe found its signal overdue did not fire it in time.
    expect(signalKinds(bounded({ end: 3_500, exitedAt: 3_500, probeAt: 2_701 }))).toEqual(['late-signal'])
  })

  it('catches a write made as valid after the hold ended (a `lock.valid` that lies)', () => {
    const h = bounded({ end: 2_700, signalAt: 2_700 })
    const valid = { ...write('a', '10', 0, 'committed'), checkedAt: 2_750 }
    expect(
      checkHistory(
        { ...clean, holds: [h], writes: [valid], counters: { l: 1 } },
        { toleranceMs: 0.001 },
      ).violations.map((v) => v.kind),
    ).toEqual(['unheld-write'])
    const knowinglyLate = { ...valid, late: true }
    expect(
      checkHistory(
        { ...clean, holds: [h], writes: [knowinglyLate], counters: { l: 1 } },
        { toleranceMs: 0.001 },
      ).violations,
    ).toEqual([])
  })
})

const record = (fields: Partial<HoldRecord>): HoldRecord => ({
  lock: 'l',
  worker: 'a',
  holder: 'a-holder',
  token: '10',
  start: 5,
  validForMs: 2_700,
  anchor: 0,
  probe: undefined,
  signalAt: undefined,
  signalReason: undefined,
  exitedAt: undefined,
  ...fields,
})

describe('hold cut-offs (judgeHold)', () => {
  it('ends a hold where its signal fired, however late: no cut-off at start + validFor', () => {
    expect(judgeHold(record({}), [], 60_000)).toMatchObject({ end: undefined, due: 2_700 })
    expect(judgeHold(record({ signalAt: 9_000, signalReason: 'expired' }), [], 60_000)).toMatchObject({
      end: 9_000,
      endedBy: 'expired',
      due: 2_700,
    })
    // So a never-firing signal overlaps the next holder, and is reported late.
    const next = { ...hold('b', '12', 4_000, 5_000) }
    const history = { ...clean, holds: [judgeHold(record({}), [], 60_000), next] }
    expect(kinds(history, 0.001).sort()).toEqual(['late-signal', 'overlap'])
  })

  it('a renewal moves the bound: due counts from the last write that may have applied', () => {
    expect(judgeHold(record({ anchor: 1_000 }), [], 60_000)).toMatchObject({ due: 3_700 })
  })

  it('ends a killed holder at its exit', () => {
    expect(judgeHold(record({ exitedAt: 1_500 }), [], 60_000)).toMatchObject({
      end: 1_500,
      endedBy: 'exited',
    })
  })

  it('SIGSTOP across the bound: the hold ends at the bound, the signal is due when the holder continues', () => {
    const pauses: Pause[] = [[1_000, 6_000]]
    const judged = judgeHold(record({ signalAt: 6_004, signalReason: 'expired' }), pauses, 60_000)
    expect(judged).toMatchObject({ end: 2_700, due: 6_000, signalAt: 6_004 })
    expect(judged.endedBy).toMatch(/^deadline while stopped/)
    expect(signalKinds(judged)).toEqual([])
    // A signal that still has not fired 2 s after SIGCONT is late.
    expect(signalKinds(judgeHold(record({}), pauses, 60_000))).toEqual(['late-signal'])
    // While it is still stopped, nothing is judged late.
    expect(judgeHold(record({}), [[1_000, undefined]], 60_000)).toMatchObject({ end: 2_700, due: undefined })
    // A write judged valid after SIGCONT shows that `lock.valid` did not see the deadline.
    const write6 = { ...write('a', '10', 0, 'committed'), checkedAt: 6_001 }
    expect(
      checkHistory(
        { ...clean, holds: [judged], writes: [write6], counters: { l: 1 } },
        { toleranceMs: 0.001 },
      ).violations.map((v) => v.kind),
    ).toEqual(['unheld-write'])
  })

  it('SIGSTOP that ends before the bound, or starts after the signal, cuts nothing', () => {
    expect(judgeHold(record({ signalAt: 2_700 }), [[500, 1_000]], 60_000)).toMatchObject({ end: 2_700 })
    expect(judgeHold(record({ signalAt: 2_000 }), [[2_100, 9_000]], 60_000)).toMatchObject({ end: 2_000 })
  })

  it('carries the mode of a hold record into the hold it judges', () => {
    const judged = judgeHold({ ...record({}), mode: { kind: 'semaphore', limit: 3 } }, [], 0)
    expect(judged.mode).toEqual({ kind: 'semaphore', limit: 3 })
  })

  it('keeps the probe only for the bound it was set for', () => {
    expect(judgeHold(record({ probe: { due: 2_700, at: 2_702 } }), [], 0).probeAt).toBe(2_702)
    expect(judgeHold(record({ anchor: 1_000, probe: { due: 2_700, at: 2_702 } }), [], 0).probeAt).toBe(
      undefined,
    )
  })
})

describe('fair order (judgeOrder)', () => {
  const LOCK = 'orders'
  const LEASE = leaseNameFor(LOCK)
  const ticketOf = (holder: string, resourceVersion: string | undefined, sentAt: number): CreateRecord => ({
    holder,
    name: newTicketName(LEASE),
    sentAt,
    outcome: resourceVersion === undefined ? 'unknown' : 'applied',
    resourceVersion,
  })
  const served = (worker: string, token: string): Acquisition => ({
    lock: LOCK,
    worker,
    holder: `${worker}-holder`,
    token,
  })
  const judge = (acquisitions: Acquisition[], creates: CreateRecord[]) =>
    judgeOrder(acquisitions, (holder) => creates.filter((c) => c.holder === holder))

  it("tells a lock's tickets from other leases", () => {
    expect(isTicketNameOf(newTicketName(LEASE), LEASE)).toBe(true)
    expect(isTicketNameOf(newTicketName(leaseNameFor('other')), LEASE)).toBe(false)
    expect(isTicketNameOf(LEASE, LEASE)).toBe(false)
  })

  it('passes acquisitions served in the order of their tickets', () => {
    const creates = [
      ticketOf('a-holder', '10', 1),
      ticketOf('b-holder', '12', 2),
      ticketOf('c-holder', '15', 3),
    ]
    const result = judge([served('a', '20'), served('b', '22'), served('c', '25')], creates)
    expect(result).toMatchObject({ queued: 3, direct: 0, unplaced: 0, inversions: 0, overtaken: 0 })
  })

  it('counts every pair served against ticket order, and each waiter overtaken once', () => {
    const creates = [
      ticketOf('a-holder', '10', 1),
      ticketOf('b-holder', '12', 2),
      ticketOf('c-holder', '15', 3),
    ]
    // c (last in line) first, then a, then b: c passed both a and b.
    const result = judge([served('c', '20'), served('a', '22'), served('b', '25')], creates)
    expect(result).toMatchObject({ queued: 3, inversions: 2, overtaken: 2 })
    expect(result.examples[0]).toMatch(/a \(ticket 10, token 22\) was served after c \(ticket 15, token 20\)/)
  })

  it('places an acquisition by its last ticket: a waiter that joined again stands at the back', () => {
    const creates = [
      ticketOf('a-holder', '10', 1),
      ticketOf('b-holder', '12', 2),
      // a was cut off and joined again behind b.
      ticketOf('a-holder', '14', 3),
    ]
    expect(placeOf(served('a', '30'), creates)).toEqual({ kind: 'queued', position: '14' })
    expect(judge([served('b', '20'), served('a', '30')], creates).inversions).toBe(0)
    expect(judge([served('a', '20'), served('b', '30')], creates).inversions).toBe(1)
  })

  it('keeps apart acquisitions that never queued and those whose ticket create went unanswered', () => {
    const creates = [ticketOf('b-holder', undefined, 2)]
    const result = judge([served('a', '20'), served('b', '22')], creates)
    expect(result).toMatchObject({ queued: 0, direct: 1, unplaced: 1, inversions: 0 })
  })
})
