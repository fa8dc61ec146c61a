import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { checkHistory } from '../faults/checker.ts'
import { commitResource, initResource, readResource } from '../faults/fenced-resource.ts'
import type { History, Hold, Write } from '../faults/history.ts'

// The checker and the fenced resource are what every fault test relies on to fail: these histories plant
// each kind of violation and show that it is caught, and that clean histories pass.

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
