import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { WorkQueue } from './work-queue.ts'

beforeEach(() => {
  vi.useFakeTimers()
})

afterEach(() => {
  expect(vi.getTimerCount()).toBe(0)
  vi.useRealTimers()
})

describe('WorkQueue', () => {
  it('hands a key to one worker at a time and runs it again if it was added meanwhile', async () => {
    const queue = new WorkQueue(() => Date.now())
    queue.add('a')
    queue.add('a')
    expect(queue.length).toBe(1)
    expect(await queue.get()).toBe('a')
    queue.add('a')
    expect(queue.length).toBe(0)
    queue.done('a')
    expect(await queue.get()).toBe('a')
    queue.done('a')
    queue.shutDown()
  })

  it('keeps only the earliest delayed add per key', async () => {
    const queue = new WorkQueue(() => Date.now())
    queue.addAfter('a', 5_000)
    queue.addAfter('a', 1_000)
    queue.addAfter('a', 9_000)
    expect(queue.delayedCount).toBe(1)
    await vi.advanceTimersByTimeAsync(999)
    expect(queue.length).toBe(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(queue.length).toBe(1)
    expect(vi.getTimerCount()).toBe(0)
    queue.shutDown()
  })

  it('an immediate add cancels the pending delay; forget drops it', async () => {
    const queue = new WorkQueue(() => Date.now())
    queue.addAfter('a', 1_000)
    queue.add('a')
    expect(queue.delayedCount).toBe(0)
    queue.addAfter('b', 1_000)
    queue.forget('b')
    await vi.advanceTimersByTimeAsync(2_000)
    expect(queue.length).toBe(1)
    queue.shutDown()
  })

  it('shutDown wakes waiting workers with undefined and clears every timer', async () => {
    const queue = new WorkQueue(() => Date.now())
    const waiting = queue.get()
    queue.addAfter('a', 60_000)
    queue.shutDown()
    expect(await waiting).toBeUndefined()
    expect(await queue.get()).toBeUndefined()
    queue.add('b')
    expect(queue.length).toBe(0)
  })
})
