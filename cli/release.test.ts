import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { WatchExpiredError } from '../sdk/internal.ts'
import type { LeaseJson, WatchEvent } from './api.ts'
import { type ReleaseApi, type ReleaseWait, releaseOnceExpired } from './release-wait.ts'

const MANAGED = { 'app.kubernetes.io/managed-by': 'kube-locks' }

function lease(
  resourceVersion: string,
  holder: string | undefined,
  changes: Partial<LeaseJson> = {},
): LeaseJson {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'nightly', namespace: 'shop', uid: 'u-1', resourceVersion, labels: MANAGED },
    // Written by a holder whose clock is 40 s behind this machine's: it looks long expired.
    spec: { holderIdentity: holder, leaseDurationSeconds: 20, renewTime: '2029-12-31T23:59:20.000000Z' },
    ...changes,
  }
}

/** A fake API server: records every call; watches stay open until the test emits or the caller stops. */
function fakeApi(
  options: {
    onReplace?: (lease: LeaseJson) => LeaseJson | undefined
    get?: () => LeaseJson | undefined
  } = {},
) {
  const calls: string[] = []
  const written: LeaseJson[] = []
  let emit: ((event: WatchEvent) => void) | undefined
  let failWatch: (error: Error) => void = () => {}
  const api: ReleaseApi = {
    get: async () => {
      calls.push('get')
      if (!options.get) throw new Error('unexpected get')
      return options.get()
    },
    replace: async (next) => {
      calls.push(`replace ${next.metadata?.uid}@${next.metadata?.resourceVersion}`)
      written.push(next)
      const answer = options.onReplace
        ? options.onReplace(next)
        : { ...next, metadata: { ...next.metadata, resourceVersion: '99' } }
      return answer
    },
    watch: (_namespace, query, onEvent, signal) => {
      calls.push(`watch ${query.fieldSelector} from ${query.resourceVersion}`)
      return new Promise<void>((resolve, reject) => {
        emit = onEvent
        failWatch = reject
        signal.addEventListener('abort', () => resolve(), { once: true })
      })
    },
  }
  return {
    api,
    calls,
    written,
    emit: (event: WatchEvent) => emit?.(event),
    failWatch: (error: Error) => failWatch(error),
  }
}

let start = 0
const monotonic = () => Date.now() - start
const waits: ReleaseWait[] = []

beforeEach(() => {
  vi.useFakeTimers()
  start = Date.now()
  waits.length = 0
})
afterEach(() => {
  vi.useRealTimers()
})

function options(api: ReleaseApi, overrides: { timeoutMs?: number; signal?: AbortSignal } = {}) {
  return {
    api,
    monotonic,
    // 40 s ahead of the holder's clock; only written into renewTime, never read for the decision.
    wallNow: () => Date.parse('2030-01-01T00:00:00Z'),
    graceMs: 2_000,
    timeoutMs: overrides.timeoutMs ?? 60_000,
    signal: overrides.signal ?? new AbortController().signal,
    onWait: (wait: ReleaseWait) => waits.push(wait),
  }
}

describe('releaseOnceExpired', () => {
  it('frees a held lease only after its own clock saw it unchanged for duration + grace, whatever renewTime says', async () => {
    const fake = fakeApi()
    const outcome = releaseOnceExpired(lease('5', 'p-1_1_x'), options(fake.api))
    await vi.advanceTimersByTimeAsync(21_999)
    expect(fake.calls).toEqual(['watch metadata.name=nightly from 5'])
    expect(waits).toMatchObject([{ neededMs: 22_000, expiresInMs: 22_000, givesUpInMs: 60_000 }])
    await vi.advanceTimersByTimeAsync(1)
    await expect(outcome).resolves.toMatchObject({ kind: 'freed', neededMs: 22_000 })
    expect(fake.calls).toEqual(['watch metadata.name=nightly from 5', 'replace u-1@5'])
    expect(fake.written[0]?.spec).toEqual({
      leaseDurationSeconds: 20,
      renewTime: '2030-01-01T00:00:00.000000Z',
    })
  })

  it('starts the wait again when the holder renews', async () => {
    const fake = fakeApi()
    const outcome = releaseOnceExpired(lease('5', 'p-1_1_x'), options(fake.api))
    await vi.advanceTimersByTimeAsync(15_000)
    fake.emit({ type: 'MODIFIED', lease: lease('7', 'p-1_1_x') })
    await vi.advanceTimersByTimeAsync(21_999)
    expect(fake.calls).toEqual(['watch metadata.name=nightly from 5', 'watch metadata.name=nightly from 7'])
    expect(waits.map((wait) => wait.previous?.metadata?.resourceVersion)).toEqual([undefined, '5'])
    await vi.advanceTimersByTimeAsync(1)
    await expect(outcome).resolves.toMatchObject({ kind: 'freed' })
    expect(fake.calls.at(-1)).toBe('replace u-1@7')
  })

  it('ignores a watch event of the version it already judges', async () => {
    const fake = fakeApi()
    const outcome = releaseOnceExpired(lease('5', 'p-1_1_x'), options(fake.api))
    fake.emit({ type: 'ADDED', lease: lease('5', 'p-1_1_x') })
    await vi.advanceTimersByTimeAsync(22_000)
    await expect(outcome).resolves.toMatchObject({ kind: 'freed' })
    expect(fake.calls).toEqual(['watch metadata.name=nightly from 5', 'replace u-1@5'])
  })

  it('ends with nothing written when the holder releases it, or the lease is deleted, meanwhile', async () => {
    const released = fakeApi()
    const first = releaseOnceExpired(lease('5', 'p-1_1_x'), options(released.api))
    await vi.advanceTimersByTimeAsync(3_000)
    released.emit({ type: 'MODIFIED', lease: lease('6', undefined) })
    await expect(first).resolves.toMatchObject({ kind: 'released' })
    expect(released.written).toEqual([])

    const deleted = fakeApi()
    const second = releaseOnceExpired(lease('5', 'p-1_1_x'), options(deleted.api))
    deleted.emit({ type: 'DELETED', lease: lease('5', 'p-1_1_x') })
    await expect(second).resolves.toEqual({ kind: 'deleted' })
    expect(deleted.written).toEqual([])
  })

  it('gives up at the timeout without writing, counting the renewals it saw', async () => {
    const fake = fakeApi()
    const outcome = releaseOnceExpired(lease('5', 'p-1_1_x'), options(fake.api, { timeoutMs: 30_000 }))
    for (const [at, resourceVersion] of [
      [10_000, '6'],
      [20_000, '7'],
    ] as const) {
      await vi.advanceTimersByTimeAsync(at - monotonic())
      fake.emit({ type: 'MODIFIED', lease: lease(resourceVersion, 'p-1_1_x') })
    }
    await vi.advanceTimersByTimeAsync(30_000 - monotonic())
    await expect(outcome).resolves.toMatchObject({ kind: 'timed-out', changes: 2, neededMs: 22_000 })
    expect(fake.written).toEqual([])
  })

  it('with timeout 0 refuses at once, and waits only for a release when the lease outlasts the timeout', async () => {
    const fake = fakeApi()
    await expect(
      releaseOnceExpired(lease('5', 'p-1_1_x'), options(fake.api, { timeoutMs: 0 })),
    ).resolves.toMatchObject({
      kind: 'timed-out',
      changes: 0,
    })
    expect(fake.calls).toEqual([])

    const long = fakeApi()
    const outcome = releaseOnceExpired(lease('5', 'p-1_1_x'), options(long.api, { timeoutMs: 10_000 }))
    await vi.advanceTimersByTimeAsync(0)
    expect(waits.at(-1)).toMatchObject({ expiresInMs: 22_000, givesUpInMs: 10_000 })
    await vi.advanceTimersByTimeAsync(10_000)
    await expect(outcome).resolves.toMatchObject({ kind: 'timed-out' })
    expect(long.written).toEqual([])
  })

  it('judges again when the write loses to a change the watch had not delivered yet', async () => {
    let reads = 0
    const fake = fakeApi({
      onReplace: (next) =>
        next.metadata?.resourceVersion === '5'
          ? undefined
          : { ...next, metadata: { ...next.metadata, resourceVersion: '99' } },
      get: () => {
        reads++
        return lease('8', 'p-1_1_x')
      },
    })
    const outcome = releaseOnceExpired(lease('5', 'p-1_1_x'), options(fake.api))
    await vi.advanceTimersByTimeAsync(22_000)
    expect(fake.calls).toEqual([
      'watch metadata.name=nightly from 5',
      'replace u-1@5',
      'get',
      'watch metadata.name=nightly from 8',
    ])
    expect(reads).toBe(1)
    await vi.advanceTimersByTimeAsync(21_999)
    expect(fake.written).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    await expect(outcome).resolves.toMatchObject({ kind: 'freed' })
    expect(fake.calls.at(-1)).toBe('replace u-1@8')
  })

  it('keeps waiting without the watch when it fails, and still writes under the preconditions it judged', async () => {
    const fake = fakeApi()
    const outcome = releaseOnceExpired(lease('5', 'p-1_1_x'), options(fake.api))
    await vi.advanceTimersByTimeAsync(1_000)
    fake.failWatch(new Error('ECONNRESET'))
    await vi.advanceTimersByTimeAsync(20_999)
    expect(fake.written).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    await expect(outcome).resolves.toMatchObject({ kind: 'freed' })
    expect(fake.calls.at(-1)).toBe('replace u-1@5')
  })

  it('reads the lease again when the watch is too far behind (410)', async () => {
    const fake = fakeApi({ get: () => lease('9', 'q-2_2_y') })
    const outcome = releaseOnceExpired(lease('5', 'p-1_1_x'), options(fake.api))
    fake.failWatch(new WatchExpiredError())
    await vi.advanceTimersByTimeAsync(0)
    expect(waits.at(-1)?.lease.spec?.holderIdentity).toBe('q-2_2_y')
    await vi.advanceTimersByTimeAsync(22_000)
    await expect(outcome).resolves.toMatchObject({ kind: 'freed' })
    expect(fake.calls.at(-1)).toBe('replace u-1@9')
  })

  it('never writes a lease that lost its managed-by label, nor one without a duration', async () => {
    const fake = fakeApi()
    const outcome = releaseOnceExpired(lease('5', 'p-1_1_x'), options(fake.api))
    const foreign = lease('6', 'p-1_1_x')
    fake.emit({ type: 'MODIFIED', lease: { ...foreign, metadata: { ...foreign.metadata, labels: {} } } })
    await expect(outcome).resolves.toMatchObject({ kind: 'not-managed' })
    const endless = lease('5', 'p-1_1_x')
    await expect(
      releaseOnceExpired({ ...endless, spec: { holderIdentity: 'p-1_1_x' } }, options(fake.api)),
    ).resolves.toMatchObject({ kind: 'never-expires' })
    expect(fake.written).toEqual([])
  })

  it('rejects with the reason when the caller aborts, writing nothing', async () => {
    const fake = fakeApi()
    const stop = new AbortController()
    const outcome = releaseOnceExpired(lease('5', 'p-1_1_x'), options(fake.api, { signal: stop.signal }))
    await vi.advanceTimersByTimeAsync(5_000)
    stop.abort('SIGINT')
    await expect(outcome).rejects.toBe('SIGINT')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(fake.written).toEqual([])
    expect(vi.getTimerCount()).toBe(0)
  })
})
