import { describe, expect, it } from 'vitest'
import { MODE_ANNOTATION, QUEUE_POSITION_ANNOTATION } from './constants.ts'
import type { LeaseObservation } from './expiry.ts'
import type { HolderFacts, HolderVerdict } from './holders.ts'
import {
  EXCLUSIVE_MARK,
  holderDraft,
  holderKeyFor,
  isHolderRecordOf,
  judgeHolders,
  mayHaveHolders,
  modeAnnotations,
  modeOf,
  newHolderRecordName,
} from './holders.ts'
import { isDns1123Subdomain } from './lease-name.ts'
import type { LeaseRecord } from './lease-record.ts'
import type { HolderMode } from './options.ts'
import { ticketDraft } from './ticket.ts'

const NOW = 100_000
const GRACE = 1000
const SEMAPHORE_2: HolderMode = { kind: 'semaphore', limit: 2 }
const SHARED: HolderMode = { kind: 'shared' }

function record(draft: Omit<LeaseRecord, 'uid' | 'resourceVersion' | 'creationTimestamp'>, rv: string) {
  return { ...draft, uid: `uid-${draft.name}`, resourceVersion: rv, creationTimestamp: undefined }
}

function holder(rv: string, mode: HolderMode = SEMAPHORE_2, name = `lock.h-${rv}`): LeaseRecord {
  const draft = holderDraft({
    namespace: 'ns',
    leaseName: 'lock',
    lockName: 'lock',
    identity: `holder-${rv}`,
    mode,
    durationSeconds: 20,
    annotations: {},
    wallNow: 0,
    name,
  })
  return record(draft, rv)
}

function lease(holderIdentity: string | undefined, mode?: HolderMode): LeaseRecord {
  return {
    namespace: 'ns',
    name: 'lock',
    uid: 'uid-lock',
    resourceVersion: '5',
    holderIdentity,
    leaseDurationSeconds: 20,
    acquireTime: undefined,
    renewTime: undefined,
    leaseTransitions: 1,
    labels: { 'app.kubernetes.io/managed-by': 'kube-locks' },
    annotations: mode === undefined ? {} : modeAnnotations(mode),
    creationTimestamp: undefined,
  }
}

/** Seen first at `NOW - ageMs`. */
const seen = (r: LeaseRecord, ageMs = 0): LeaseObservation => ({ record: r, firstSeenAt: NOW - ageMs })

const own = holder('50')

function facts(overrides: Partial<HolderFacts>): HolderFacts {
  return {
    mode: SEMAPHORE_2,
    own,
    lease: seen(lease(undefined, SEMAPHORE_2)),
    records: [seen(own)],
    tickets: [],
    leaseName: 'lock',
    now: NOW,
    graceMs: GRACE,
    ...overrides,
  }
}

const ticket = (rv: string, ageMs = 0) =>
  seen(
    record(
      ticketDraft({
        namespace: 'ns',
        leaseName: 'lock',
        lockName: 'lock',
        identity: `waiter-${rv}`,
        durationSeconds: 15,
        annotations: {},
        wallNow: 0,
        name: `lock.q-${rv}`,
      }),
      rv,
    ),
    ageMs,
  )

const cases: readonly (readonly [string, Partial<HolderFacts>, HolderVerdict])[] = [
  ['free, marked, nobody ahead: hold', {}, { kind: 'hold' }],
  [
    'one live record ahead of a limit of 2: hold',
    { records: [seen(holder('40')), seen(own)] },
    { kind: 'hold' },
  ],
  [
    'two live records ahead of a limit of 2: wait until the first could expire',
    { records: [seen(holder('40'), 5000), seen(holder('45')), seen(own)] },
    { kind: 'wait', holder: 'holder-40', until: NOW - 5000 + 20_000 + GRACE },
  ],
  [
    'records behind do not count',
    { records: [seen(holder('40')), seen(own), seen(holder('60')), seen(holder('70'))] },
    { kind: 'hold' },
  ],
  [
    'a record seen unchanged past its duration plus the grace does not count',
    { records: [seen(holder('40'), 21_000), seen(holder('45')), seen(own)] },
    { kind: 'hold' },
  ],
  [
    'a renewed record keeps its place: the position annotation, not its resourceVersion',
    {
      records: [
        seen({
          ...holder('40'),
          resourceVersion: '90',
          annotations: { ...holder('40').annotations, [QUEUE_POSITION_ANNOTATION]: '40' },
        }),
        seen(holder('45')),
        seen(own),
      ],
    },
    { kind: 'wait', holder: 'holder-40', until: NOW + 20_000 + GRACE },
  ],
  [
    'the lease held by an exclusive holder: back off',
    { lease: seen(lease('writer', SEMAPHORE_2), 3000) },
    { kind: 'back-off', holder: 'writer', until: NOW - 3000 + 20_000 + GRACE },
  ],
  [
    'the lease held but seen unchanged past its duration plus the grace: free it',
    { lease: seen(lease('writer', SEMAPHORE_2), 21_000) },
    { kind: 'free-expired', lease: lease('writer', SEMAPHORE_2) },
  ],
  ['the lease absent: mark it (create it free)', { lease: 'absent' }, { kind: 'mark' }],
  ['the lease free without the mark: mark it', { lease: seen(lease(undefined)) }, { kind: 'mark' }],
  [
    'the lease marked for another mode that nobody holds any more: mark it anew',
    { lease: seen(lease(undefined, { kind: 'semaphore', limit: 5 })) },
    { kind: 'mark' },
  ],
  [
    'a live record of another limit: conflict',
    { records: [seen(holder('40', { kind: 'semaphore', limit: 3 })), seen(own)] },
    { kind: 'mode-conflict', inUse: { kind: 'semaphore', limit: 3 } },
  ],
  [
    'a live shared record under a semaphore: conflict',
    { records: [seen(holder('40', SHARED)), seen(own)] },
    { kind: 'mode-conflict', inUse: SHARED },
  ],
  [
    'an expired record of another limit does not conflict',
    { records: [seen(holder('40', { kind: 'semaphore', limit: 3 }), 21_000), seen(own)] },
    { kind: 'hold' },
  ],
  [
    'the mark of another mode binds while one of its holders is in',
    { lease: seen(lease(undefined, SHARED)), records: [seen(holder('40')), seen(own)] },
    { kind: 'mode-conflict', inUse: SHARED },
  ],
  [
    'an exclusive waiter in line ahead: back off until its ticket could expire',
    { tickets: [ticket('30', 2000)] },
    { kind: 'back-off', holder: 'waiter-30', until: NOW - 2000 + 15_000 + GRACE },
  ],
  ['an exclusive waiter behind: no matter', { tickets: [ticket('60')] }, { kind: 'hold' }],
  ['an expired ticket ahead: no matter', { tickets: [ticket('30', 17_000)] }, { kind: 'hold' }],
  [
    'shared: any number of live shared records ahead',
    {
      mode: SHARED,
      own: holder('50', SHARED),
      lease: seen(lease(undefined, SHARED)),
      records: ['10', '20', '30', '50'].map((rv) => seen(holder(rv, SHARED))),
    },
    { kind: 'hold' },
  ],
  [
    'backed off, the lease free and nobody in line: announce again',
    { own: undefined, records: [] },
    { kind: 'announce' },
  ],
  [
    'backed off, the lease still held: stay backed off',
    { own: undefined, records: [], lease: seen(lease('writer')) },
    { kind: 'back-off', holder: 'writer', until: NOW + 20_000 + GRACE },
  ],
  [
    'backed off, any exclusive waiter in line: stay backed off',
    { own: undefined, records: [], tickets: [ticket('90')] },
    { kind: 'back-off', holder: 'waiter-90', until: NOW + 15_000 + GRACE },
  ],
]

describe('judgeHolders', () => {
  it.each(cases)('%s', (_, overrides, verdict) => {
    expect(judgeHolders(facts(overrides))).toEqual(verdict)
  })
})

describe('the layout of holder records', () => {
  it('names a record after its lock, a valid lease name even for the longest lock lease names', () => {
    expect(newHolderRecordName('partner-api')).toMatch(/^partner-api\.h-[a-z2-7]{16}$/)
    const long = `${'a'.repeat(250)}`
    const name = newHolderRecordName(long)
    expect(name.length).toBeLessThanOrEqual(253)
    expect(isDns1123Subdomain(name)).toBe(true)
  })

  it('labels a record with its lock, hashed when the lease name is too long for a label value', () => {
    expect(holderKeyFor('partner-api')).toBe('partner-api')
    const long = 'a'.repeat(64)
    expect(holderKeyFor(long)).toMatch(/^h-[a-z2-7]{32}$/)
    expect(holderKeyFor(long)).not.toBe(holderKeyFor('a'.repeat(65)))
    const draft = holderDraft({
      namespace: 'ns',
      leaseName: long,
      lockName: 'Long',
      identity: 'me',
      mode: SHARED,
      durationSeconds: 20,
      annotations: {},
      wallNow: 0,
    })
    expect(isHolderRecordOf(draft, long)).toBe(true)
    expect(isHolderRecordOf(draft, 'a'.repeat(65))).toBe(false)
  })

  it('reads the mode back, and says so when it cannot', () => {
    expect(modeOf(modeAnnotations(SHARED))).toEqual(SHARED)
    expect(modeOf(modeAnnotations(SEMAPHORE_2))).toEqual(SEMAPHORE_2)
    expect(modeOf({})).toBeUndefined()
    expect(modeOf({ [MODE_ANNOTATION]: 'semaphore', 'kube-locks.io/limit': 'x' })).toMatch(/unknown mode/)
    expect(modeOf({ [MODE_ANNOTATION]: 'quorum' })).toMatch(/unknown mode `quorum`/)
  })

  it('an exclusive acquirer looks for holders on a marked lease (as a create leaves it), or after a read-back', () => {
    expect(
      mayHaveHolders({ ...lease('me'), annotations: { [MODE_ANNOTATION]: EXCLUSIVE_MARK } }, false),
    ).toBe(true)
    expect(mayHaveHolders({ ...lease('me'), leaseTransitions: 0 }, false)).toBe(false)
    expect(mayHaveHolders(lease('me', SHARED), false)).toBe(true)
    expect(mayHaveHolders(lease('me'), true)).toBe(true)
    expect(mayHaveHolders(lease('me'), false)).toBe(false)
  })
})
