// The example of docs/sdk.md, "Testing code that takes locks", run as it is written there (between the
// markers below), with the package's entry points imported from their source files.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { InvalidLockOptionsError, LockLostError, type Locks, LockTimeoutError } from './index.ts'
import { createTestLocks } from './testing.ts'

// example:start
// The code under test: charges an account unless another pod is charging it already.
async function chargeOnce(locks: Locks, account: string, charge: (signal: AbortSignal) => Promise<void>) {
  try {
    await locks.withLock(account, { timeout: 0 }, (signal) => charge(signal))
    return true
  } catch (error) {
    if (error instanceof LockTimeoutError) return false
    throw error
  }
}

afterEach(() => {
  vi.useRealTimers()
})

it('charges an account that nobody holds', async () => {
  await using billing = createTestLocks({ service: 'billing' })
  const charge = vi.fn(async () => {})
  expect(await chargeOnce(billing.locks, 'account-42', charge)).toBe(true)
  expect(charge).toHaveBeenCalledOnce()
})

it('skips an account that another pod is charging', async () => {
  await using billing = createTestLocks({ service: 'billing' })
  // Another Locks over the same store is another pod of the same cluster.
  await using otherPod = createTestLocks({ store: billing.store, identity: 'other-pod' })
  await using held = await otherPod.locks.acquire('account-42')
  expect(billing.store.peek('default', held.leaseName)?.holderIdentity).toBe(held.holder)
  const charge = vi.fn(async () => {})
  expect(await chargeOnce(billing.locks, 'account-42', charge)).toBe(false)
  expect(charge).not.toHaveBeenCalled()
})

it('aborts the signal before the lock expires', async () => {
  vi.useFakeTimers() // createTestLocks' clock follows Date.now(), which fake timers move
  await using test = createTestLocks()
  const lock = await test.locks.acquire('account-42', { expires: 5 })
  await vi.advanceTimersByTimeAsync(5_000)
  expect(lock.signal.aborted).toBe(true)
  expect(lock.signal.reason).toBeInstanceOf(LockLostError)
})
// example:end

describe('the example in docs/sdk.md', () => {
  const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

  it('is the code this file runs', () => {
    const docs = readFileSync(join(ROOT, 'docs', 'sdk.md'), 'utf8')
    const section = docs.split('\n## Testing code that takes locks\n')[1] ?? ''
    const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1] ?? ''
    const imports = block.split('\n').filter((line) => line.startsWith('import '))
    expect(imports).toEqual([
      "import { LockLostError, type Locks, LockTimeoutError } from 'kube-locks'",
      "import { createTestLocks } from 'kube-locks/testing'",
      "import { afterEach, expect, it, vi } from 'vitest'",
    ])
    const body = block
      .split('\n')
      .filter((line) => !line.startsWith('import '))
      .join('\n')
      .trim()
    const self = readFileSync(fileURLToPath(import.meta.url), 'utf8')
    const example = self.split('// example:start\n')[1]?.split('// example:end')[0]?.trim()
    expect(body).toBe(example)
  })
})

describe('createTestLocks', () => {
  afterEach(() => {
    vi.unstubAllEnvs()
  })

  it('reads nothing from the environment', async () => {
    vi.stubEnv('POD_NAMESPACE', 'elsewhere')
    vi.stubEnv('POD_NAME', 'pod-7')
    await using test = createTestLocks()
    expect(test.locks.namespace).toBe('default')
    await using lock = await test.locks.acquire('job')
    expect(lock.holder).toMatch(/^test_/)
    expect(test.store.peek('default', 'job')?.annotations?.['kube-locks.io/pod']).toBe('pod-7')
  })

  it('validates its options like createLocks', () => {
    expect(() => createTestLocks(null as never)).toThrow(InvalidLockOptionsError)
    expect(() => createTestLocks({ expires: 5 } as never)).toThrow(/nearest|expires/)
  })

  it('closes its Locks when disposed', async () => {
    const test = createTestLocks()
    const lock = await test.locks.acquire('job')
    await test[Symbol.asyncDispose]()
    expect(lock.signal.aborted).toBe(true)
    expect(test.store.peek('default', 'job')?.holderIdentity).toBeUndefined()
  })
})
