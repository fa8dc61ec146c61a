import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { createMemoryLimit } from './memory-limit.ts'

describe('createMemoryLimit', () => {
  it('starts a process that Node sees inside the limit, or says why it cannot', () => {
    const limit = createMemoryLimit(`kube-locks-test-${process.pid}`, 300 * 2 ** 20)
    if (typeof limit === 'string') {
      // Not root, or no memory controller: the reason names the cgroup it could not use.
      expect(limit).toMatch(/cgroup/)
      return
    }
    try {
      const [command, args] = limit.wrap(process.execPath, ['-p', 'process.constrainedMemory()'])
      expect(Number(execFileSync(command, args, { encoding: 'utf8' }).trim())).toBe(300 * 2 ** 20)
    } finally {
      limit.remove()
    }
  })
})
