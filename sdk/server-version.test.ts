import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Logger } from './clock.ts'
import { createLocks } from './create-locks.ts'
import { LockUnavailableError } from './errors.ts'
import type { LeaseStore } from './lease-store.ts'
import type { Locks } from './locks.ts'
import { createMemoryLeaseStore } from './memory-store.ts'
import type { ServerVersionInfo } from './server-version.ts'
import {
  checkServerVersion,
  compareVersions,
  parseServerVersion,
  promisesComparableResourceVersions,
} from './server-version.ts'
import { fakeClock, settle } from './testing/helpers.ts'

describe('parseServerVersion', () => {
  it.each([
    [
      { major: '1', minor: '33', gitVersion: 'v1.33.13' },
      { major: 1, minor: 33 },
    ],
    [
      { major: '1', minor: '36', gitVersion: 'v1.36.3' },
      { major: 1, minor: 36 },
    ],
    [
      { major: '1', minor: '34+', gitVersion: 'v1.34.2-eks-b3126f4' },
      { major: 1, minor: 34 },
    ],
    [
      { major: '', minor: '', gitVersion: 'v1.32.4-gke.1106006' },
      { major: 1, minor: 32 },
    ],
    [{ gitVersion: 'v1.35.0+k3s1' }, { major: 1, minor: 35 }],
    [{ gitVersion: '1.40.1' }, { major: 1, minor: 40 }],
    [
      { major: '2', minor: '0' },
      { major: 2, minor: 0 },
    ],
    [{ major: '', minor: '', gitVersion: 'v0.0.0-master+$Format:%H$' }, undefined],
    [{ gitVersion: 'unknown' }, undefined],
    [{ gitVersion: 'v1.3x.1' }, undefined],
    [{}, undefined],
  ])('%j → %j', (info, expected) => {
    expect(parseServerVersion(info)).toEqual(expected)
  })
})

describe('promisesComparableResourceVersions', () => {
  it.each([
    [{ major: 1, minor: 33 }, false],
    [{ major: 1, minor: 34 }, false],
    [{ major: 1, minor: 35 }, true],
    [{ major: 1, minor: 36 }, true],
    [{ major: 2, minor: 0 }, true],
  ])('%j → %s', (version, expected) => {
    expect(promisesComparableResourceVersions(version)).toBe(expected)
  })

  it('compares numerically, not as text', () => {
    expect(compareVersions({ major: 1, minor: 9 }, { major: 1, minor: 35 })).toBeLessThan(0)
    expect(compareVersions({ major: 1, minor: 100 }, { major: 1, minor: 35 })).toBeGreaterThan(0)
  })
})

function recordingLogger() {
  const logger = { warn: vi.fn(), debug: vi.fn() } satisfies Logger
  return logger
}

/** The memory store plus a `serverVersion` that answers `answer` and counts its calls. */
function versionedStore(answer: (signal?: AbortSignal) => Promise<ServerVersionInfo>) {
  const memory = createMemoryLeaseStore()
  const serverVersion = vi.fn(async (options?: { signal?: AbortSignal | undefined }) =>
    answer(options?.signal),
  )
  const store: LeaseStore = { ...memory, server: 'https://api.test:6443', serverVersion }
  return { store, serverVersion }
}

/** A request the server never answers: it ends only when its signal aborts, like a real one. */
const unanswered = (signal?: AbortSignal) =>
  new Promise<ServerVersionInfo>((_resolve, reject) => {
    signal?.addEventListener('abort', () => reject(signal.reason), { once: true })
  })

describe('checkServerVersion', () => {
  it('warns with the reported version on a server before 1.35', async () => {
    const logger = recordingLogger()
    const { store } = versionedStore(async () => ({ major: '1', minor: '33', gitVersion: 'v1.33.13' }))
    await checkServerVersion(store, logger)
    expect(logger.warn).toHaveBeenCalledOnce()
    const [message, fields] = logger.warn.mock.calls[0] ?? []
    expect(message).toContain('https://api.test:6443 runs Kubernetes v1.33.13, older than 1.35')
    expect(message).toContain('KEP-5504')
    expect(fields).toEqual({ server: 'https://api.test:6443', serverVersion: 'v1.33.13' })
  })

  it.each([
    ['1.35', { major: '1', minor: '35', gitVersion: 'v1.35.0' }],
    ['1.36', { major: '1', minor: '36', gitVersion: 'v1.36.3' }],
  ])('is silent on %s', async (_name, info) => {
    const logger = recordingLogger()
    await checkServerVersion(versionedStore(async () => info).store, logger)
    expect(logger.warn).not.toHaveBeenCalled()
    expect(logger.debug).not.toHaveBeenCalled()
  })

  it('only debug-logs a version it cannot read, or a failed request', async () => {
    const logger = recordingLogger()
    await checkServerVersion(versionedStore(async () => ({ gitVersion: 'v0.0.0-master' })).store, logger)
    const failure = new LockUnavailableError({
      server: 'https://api.test:6443',
      problem: 'answered 503',
      outcomeUnknown: false,
    })
    await checkServerVersion(versionedStore(() => Promise.reject(failure)).store, logger)
    expect(logger.warn).not.toHaveBeenCalled()
    expect(logger.debug.mock.calls.map(([message]) => message)).toEqual([
      'the API server does not report its version',
      'could not read the API server version',
    ])
  })

  it('does nothing with a store that cannot tell its version', async () => {
    const logger = recordingLogger()
    await checkServerVersion(createMemoryLeaseStore(), logger)
    expect(logger.warn).not.toHaveBeenCalled()
    expect(logger.debug).not.toHaveBeenCalled()
  })
})

describe('the lock client on an older server', () => {
  const opened: Locks[] = []
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((locks) => locks.close()))
    vi.useRealTimers()
  })

  function locks(store: LeaseStore, logger: Logger): Locks {
    const instance = createLocks({ store, logger, namespace: 'shop', identity: 'pod-a', clock: fakeClock })
    opened.push(instance)
    return instance
  }

  it('asks once, at the first acquire, and warns once', async () => {
    const logger = recordingLogger()
    const { store, serverVersion } = versionedStore(async () => ({
      major: '1',
      minor: '33',
      gitVersion: 'v1.33.13',
    }))
    const client = locks(store, logger)
    expect(serverVersion).not.toHaveBeenCalled()
    await (await client.acquire('a')).release()
    await client.withLock('b', () => {})
    await (await client.acquire('a')).release()
    await settle()
    expect(serverVersion).toHaveBeenCalledOnce()
    expect(serverVersion.mock.calls[0]?.[0]?.signal).toBeInstanceOf(AbortSignal)
    expect(logger.warn.mock.calls.map(([message]) => message)).toEqual([
      expect.stringContaining('runs Kubernetes v1.33.13, older than 1.35'),
    ])
  })

  it('warns once per lock client', async () => {
    const logger = recordingLogger()
    const { store, serverVersion } = versionedStore(async () => ({
      major: '1',
      minor: '34',
      gitVersion: 'v1.34.4',
    }))
    await (await locks(store, logger).acquire('a')).release()
    await (await locks(store, logger).acquire('b')).release()
    await settle()
    expect(serverVersion).toHaveBeenCalledTimes(2)
    expect(logger.warn).toHaveBeenCalledTimes(2)
  })

  it('does not wait for the answer to acquire, and a failed check changes nothing', async () => {
    const logger = recordingLogger()
    const { store, serverVersion } = versionedStore(unanswered)
    const client = locks(store, logger)
    const lock = await client.acquire('a')
    expect(lock.fencingToken).toMatch(/^\d+$/)
    await lock.release()
    // close() ends the unanswered request: nothing is left running.
    const signal = serverVersion.mock.calls[0]?.[0]?.signal
    await client.close()
    expect(signal?.aborted).toBe(true)
    expect(logger.warn).not.toHaveBeenCalled()
  })

  it('gives the request a timeout of its own', async () => {
    const logger = recordingLogger()
    const { store, serverVersion } = versionedStore(unanswered)
    await (await locks(store, logger).acquire('a')).release()
    const signal = serverVersion.mock.calls[0]?.[0]?.signal
    expect(signal?.aborted).toBe(false)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(signal?.aborted).toBe(true)
  })

  it('is silent on 1.35 and later', async () => {
    const logger = recordingLogger()
    const { store, serverVersion } = versionedStore(async () => ({
      major: '1',
      minor: '35',
      gitVersion: 'v1.35.4',
    }))
    await (await locks(store, logger).acquire('a')).release()
    await settle()
    expect(serverVersion).toHaveBeenCalledOnce()
    expect(logger.warn).not.toHaveBeenCalled()
  })
})
