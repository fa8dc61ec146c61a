import { describe, expect, it } from 'vitest'
import type { AcquireState, StepContext, StepResult } from './acquire-step.ts'
import { acquireStep, INITIAL_STATE } from './acquire-step.ts'
import {
  LeaseConflictError,
  LeaseNotManagedError,
  LockApiError,
  LockPermissionError,
  LockUnavailableError,
} from './errors.ts'
import type { LeaseDraft, LeaseRecord } from './lease-record.ts'
import type { ScriptedCall } from './testing/scripted-store.ts'
import { scriptedStore } from './testing/scripted-store.ts'

const NOW = 100_000
const GRACE = 1000
const DURATION = 20

function lease(overrides: Partial<LeaseRecord> = {}): LeaseRecord {
  return {
    namespace: 'ns',
    name: 'orders',
    uid: 'uid-1',
    resourceVersion: '900719925474099300',
    holderIdentity: 'other_1_aaaa',
    leaseDurationSeconds: DURATION,
    acquireTime: '2030-01-01T00:00:00.000000Z',
    renewTime: '2030-01-01T00:00:00.000000Z',
    leaseTransitions: 3,
    labels: { 'app.kubernetes.io/managed-by': 'kube-locks', team: 'a' },
    annotations: {
      'kube-locks.io/name': 'orders',
      'kube-locks.io/service': 'other-service',
      'kube-locks.io/pod': 'other-pod',
      'user/note': 'kept',
    },
    creationTimestamp: '2030-01-01T00:00:00Z',
    ...overrides,
  }
}

const written =
  (rv: string) =>
  (input: LeaseDraft | LeaseRecord): LeaseRecord => ({
    ...lease(),
    ...input,
    uid: 'uid' in input ? input.uid : 'uid-new',
    resourceVersion: rv,
    creationTimestamp: 'x',
  })

const unknownOutcome = () =>
  new LockUnavailableError({
    server: 'https://api',
    problem: 'answered 504',
    outcomeUnknown: true,
    status: 504,
  })
const notSent = () =>
  new LockUnavailableError({
    server: 'https://api',
    problem: 'could not be reached (ECONNREFUSED)',
    outcomeUnknown: false,
  })
const forbidden = () =>
  new LockPermissionError({
    verb: 'get',
    resource: 'leases.coordination.k8s.io',
    namespace: 'ns',
    status: 403,
  })

interface Case {
  readonly name: string
  readonly state: AcquireState
  readonly calls: readonly ScriptedCall[]
  readonly expect: (result: StepResult, received: { op: string; arg: unknown }[]) => void
  readonly throws?: new (...args: never[]) => Error
}

const cases: Case[] = [
  {
    name: 'absent lease: creates it with holder, label, annotations and MicroTimes',
    state: INITIAL_STATE,
    calls: [
      { op: 'get', answer: undefined },
      { op: 'create', answer: written('10') },
    ],
    expect: (result, received) => {
      expect(result).toMatchObject({ kind: 'acquired', sentAt: NOW, record: { resourceVersion: '10' } })
      const draft = received[1]?.arg as LeaseDraft
      expect(draft).toMatchObject({
        namespace: 'ns',
        name: 'orders',
        holderIdentity: 'me_1_beef',
        leaseDurationSeconds: DURATION,
        leaseTransitions: 0,
        labels: { 'app.kubernetes.io/managed-by': 'kube-locks' },
        annotations: { 'kube-locks.io/name': 'Orders', 'kube-locks.io/service': 'svc' },
      })
      expect(draft.acquireTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
      expect(draft.renewTime).toBe(draft.acquireTime)
    },
  },
  {
    name: 'known absent: creates without reading first',
    state: { view: 'absent', pendingSentAt: undefined },
    calls: [{ op: 'create', answer: written('11') }],
    expect: (result) => expect(result).toMatchObject({ kind: 'acquired', record: { resourceVersion: '11' } }),
  },
  {
    name: 'create loses to another creator (AlreadyExists): read again',
    state: INITIAL_STATE,
    calls: [
      { op: 'get', answer: undefined },
      {
        op: 'create',
        answer: new LeaseConflictError({ reason: 'AlreadyExists', leaseName: 'orders', namespace: 'ns' }),
      },
    ],
    expect: (result) => {
      expect(result.kind).toBe('conflict')
      expect(result.kind === 'conflict' && result.state.view).toBe('unknown')
    },
  },
  {
    name: 'free lease: takes it with uid and resourceVersion preconditions',
    state: INITIAL_STATE,
    calls: [
      { op: 'get', answer: lease({ holderIdentity: undefined }) },
      { op: 'update', answer: written('12') },
    ],
    expect: (result, received) => {
      expect(result).toMatchObject({ kind: 'acquired', sentAt: NOW })
      const update = received[1]?.arg as LeaseRecord
      expect(update).toMatchObject({
        uid: 'uid-1',
        resourceVersion: '900719925474099300',
        holderIdentity: 'me_1_beef',
        leaseTransitions: 4,
        labels: { team: 'a', 'app.kubernetes.io/managed-by': 'kube-locks' },
      })
      // The previous holder's pod must not stay attributed to the new holder.
      expect(update.annotations).toEqual({
        'kube-locks.io/name': 'Orders',
        'kube-locks.io/service': 'svc',
        'user/note': 'kept',
      })
    },
  },
  {
    name: 'lease held by another, just seen: waits, no write',
    state: INITIAL_STATE,
    calls: [{ op: 'get', answer: lease() }],
    expect: (result) => {
      expect(result).toMatchObject({ kind: 'held', expiresAt: NOW + DURATION * 1000 + GRACE })
      expect(result.kind === 'held' && result.observation.firstSeenAt).toBe(NOW)
    },
  },
  {
    name: 'held lease seen unchanged for duration + grace: takes it over without reading again',
    state: {
      view: { record: lease(), firstSeenAt: NOW - DURATION * 1000 - GRACE },
      pendingSentAt: undefined,
    },
    calls: [{ op: 'update', answer: written('13') }],
    expect: (result, received) => {
      expect(result).toMatchObject({ kind: 'acquired', record: { resourceVersion: '13' } })
      expect(received[0]?.arg).toMatchObject({ resourceVersion: '900719925474099300', uid: 'uid-1' })
    },
  },
  {
    name: 'held lease seen unchanged for 1 ms less than duration + grace: still waits',
    state: {
      view: { record: lease(), firstSeenAt: NOW - DURATION * 1000 - GRACE + 1 },
      pendingSentAt: undefined,
    },
    calls: [],
    expect: (result) => expect(result).toMatchObject({ kind: 'held', expiresAt: NOW + 1 }),
  },
  {
    name: 'renewTime far in the past does not make a lease expire (other clocks are not trusted)',
    state: INITIAL_STATE,
    calls: [{ op: 'get', answer: lease({ renewTime: '1999-01-01T00:00:00.000000Z' }) }],
    expect: (result) => expect(result.kind).toBe('held'),
  },
  {
    name: 're-reading an unchanged lease keeps its first-seen time, so polling never postpones expiry',
    state: {
      view: 'unknown',
      pendingSentAt: undefined,
      previous: { record: lease(), firstSeenAt: NOW - DURATION * 1000 - GRACE },
    },
    calls: [
      { op: 'get', answer: lease() },
      { op: 'update', answer: written('15') },
    ],
    expect: (result) => expect(result).toMatchObject({ kind: 'acquired', record: { resourceVersion: '15' } }),
  },
  {
    name: 're-reading a changed lease restarts the clock',
    state: { view: 'unknown', pendingSentAt: undefined, previous: { record: lease(), firstSeenAt: 0 } },
    calls: [{ op: 'get', answer: lease({ resourceVersion: '900719925474099301' }) }],
    expect: (result) => expect(result).toMatchObject({ kind: 'held', observation: { firstSeenAt: NOW } }),
  },
  {
    name: 'held lease without a duration never expires by observation',
    state: {
      view: { record: lease({ leaseDurationSeconds: undefined }), firstSeenAt: 0 },
      pendingSentAt: undefined,
    },
    calls: [],
    expect: (result) => expect(result).toMatchObject({ kind: 'held', expiresAt: Number.POSITIVE_INFINITY }),
  },
  {
    name: 'takeover loses the compare-and-swap (renewed meanwhile): read again',
    state: { view: { record: lease(), firstSeenAt: 0 }, pendingSentAt: undefined },
    calls: [
      {
        op: 'update',
        answer: new LeaseConflictError({ reason: 'Conflict', leaseName: 'orders', namespace: 'ns' }),
      },
    ],
    expect: (result) => expect(result).toMatchObject({ kind: 'conflict', state: { view: 'unknown' } }),
  },
  {
    name: 'read fails with 5xx: unavailable, nothing pending',
    state: INITIAL_STATE,
    calls: [{ op: 'get', answer: unknownOutcome() }],
    expect: (result) =>
      expect(result).toMatchObject({
        kind: 'unavailable',
        state: { view: 'unknown', pendingSentAt: undefined },
      }),
  },
  {
    name: 'create times out after it was sent: maybe acquired, remembers when it was sent',
    state: { view: 'absent', pendingSentAt: undefined },
    calls: [{ op: 'create', answer: unknownOutcome() }],
    expect: (result) =>
      expect(result).toMatchObject({ kind: 'unavailable', state: { view: 'unknown', pendingSentAt: NOW } }),
  },
  {
    name: 'create never reached the server: nothing pending',
    state: { view: 'absent', pendingSentAt: undefined },
    calls: [{ op: 'create', answer: notSent() }],
    expect: (result) =>
      expect(result).toMatchObject({
        kind: 'unavailable',
        state: { view: 'unknown', pendingSentAt: undefined },
      }),
  },
  {
    name: 'a second unknown write keeps the earliest send time',
    state: { view: 'absent', pendingSentAt: NOW - 5000 },
    calls: [{ op: 'create', answer: unknownOutcome() }],
    expect: (result) => expect(result).toMatchObject({ state: { pendingSentAt: NOW - 5000 } }),
  },
  {
    name: 'after an unknown write, a successful write counts its own send time',
    state: { view: 'absent', pendingSentAt: NOW - 5000 },
    calls: [{ op: 'create', answer: written('16') }],
    expect: (result) => expect(result).toMatchObject({ kind: 'acquired', sentAt: NOW }),
  },
  {
    name: 'after an unknown write, a read showing this acquisition as holder: acquired, deadline from the send',
    state: { view: 'unknown', pendingSentAt: NOW - 700 },
    calls: [{ op: 'get', answer: lease({ holderIdentity: 'me_1_beef', resourceVersion: '14' }) }],
    expect: (result) =>
      expect(result).toMatchObject({
        kind: 'acquired',
        sentAt: NOW - 700,
        readBack: true,
        record: { resourceVersion: '14' },
      }),
  },
  {
    name: 'a read showing this identity as holder with no write on record: someone else holds it',
    state: INITIAL_STATE,
    calls: [{ op: 'get', answer: lease({ holderIdentity: 'me_1_beef' }) }],
    expect: (result) =>
      expect(result).toMatchObject({ kind: 'held', expiresAt: NOW + DURATION * 1000 + GRACE }),
  },
  {
    name: 'a lease without the managed-by label: throws, no write',
    state: INITIAL_STATE,
    calls: [{ op: 'get', answer: lease({ holderIdentity: undefined, labels: { team: 'a' } }) }],
    expect: () => {},
    throws: LeaseNotManagedError,
  },
  {
    name: "a free lease that is a waiter's ticket: not a lock, throws, no write",
    state: INITIAL_STATE,
    calls: [
      {
        op: 'get',
        answer: lease({
          holderIdentity: undefined,
          labels: { 'app.kubernetes.io/managed-by': 'kube-locks', 'kube-locks.io/queue-for': 'other' },
        }),
      },
    ],
    expect: () => {},
    throws: LeaseNotManagedError,
  },
  {
    name: 'a known unmanaged lease seen long ago: throws, no write',
    state: {
      view: { record: lease({ labels: {} }), firstSeenAt: 0 },
      pendingSentAt: undefined,
    },
    calls: [],
    expect: () => {},
    throws: LeaseNotManagedError,
  },
  {
    name: 'after an unknown write, a read showing another holder: held',
    state: { view: 'unknown', pendingSentAt: NOW - 700 },
    calls: [{ op: 'get', answer: lease() }],
    expect: (result) => expect(result).toMatchObject({ kind: 'held', state: { pendingSentAt: NOW - 700 } }),
  },
  {
    name: 'permission denied on read: throws',
    state: INITIAL_STATE,
    calls: [{ op: 'get', answer: forbidden() }],
    expect: () => {},
    throws: LockPermissionError,
  },
  {
    name: 'other API rejection on write: throws',
    state: { view: 'absent', pendingSentAt: undefined },
    calls: [{ op: 'create', answer: new LockApiError(422, 'Invalid', 'invalid') }],
    expect: () => {},
    throws: LockApiError,
  },
]

describe('acquireStep', () => {
  it.each(cases)('$name', async (testCase) => {
    const store = scriptedStore(testCase.calls)
    const ctx: StepContext = {
      store,
      namespace: 'ns',
      leaseName: 'orders',
      identity: 'me_1_beef',
      leaseDurationSeconds: DURATION,
      annotations: { 'kube-locks.io/name': 'Orders', 'kube-locks.io/service': 'svc' },
      graceMs: GRACE,
      now: () => NOW,
      wallNow: () => Date.UTC(2030, 0, 1, 12, 0, 0, 250) + 0.123,
    }
    if (testCase.throws) {
      await expect(acquireStep(ctx, testCase.state)).rejects.toBeInstanceOf(testCase.throws)
    } else {
      const result = await acquireStep(ctx, testCase.state)
      testCase.expect(result, store.received)
    }
    expect(store.remaining, 'every scripted call was made').toBe(0)
  })
})

describe('acquireStep requests', () => {
  const base = {
    namespace: 'ns',
    leaseName: 'orders',
    identity: 'me_1_beef',
    leaseDurationSeconds: DURATION,
    annotations: {},
    graceMs: GRACE,
    wallNow: () => Date.UTC(2030, 0, 1),
  }

  it('sends the write with the write signal, asked for right before the write', async () => {
    const readSignal = new AbortController().signal
    const writeSignal = new AbortController().signal
    const signals: (AbortSignal | undefined)[] = []
    let asked = 0
    const store = scriptedStore([
      { op: 'get', answer: undefined },
      { op: 'create', answer: written('20') },
    ])
    const spied = {
      ...store,
      get: (ns: string, name: string, o?: { signal?: AbortSignal }) => {
        signals.push(o?.signal)
        return store.get(ns, name, o)
      },
      create: (draft: LeaseDraft, o?: { signal?: AbortSignal }) => {
        signals.push(o?.signal)
        return store.create(draft, o)
      },
    }
    const result = await acquireStep(
      {
        ...base,
        store: spied,
        now: () => NOW,
        signal: readSignal,
        writeSignal: () => {
          asked++
          return writeSignal
        },
      },
      INITIAL_STATE,
    )
    expect(result).toMatchObject({ kind: 'acquired', readBack: false })
    expect(signals).toEqual([readSignal, writeSignal])
    expect(asked).toBe(1)
  })

  it('a read slower than the lock stays valid: too slow, no write', async () => {
    let now = NOW
    const store = scriptedStore([{ op: 'get', answer: undefined }])
    const slow = {
      ...store,
      get: async (ns: string, name: string) => {
        now += 60
        return store.get(ns, name)
      },
    }
    const result = await acquireStep({ ...base, store: slow, now: () => now, validForMs: 45 }, INITIAL_STATE)
    expect(result).toMatchObject({ kind: 'too-slow', roundTripMs: 60, state: { view: 'absent' } })
    expect(store.remaining).toBe(0)
  })
})
