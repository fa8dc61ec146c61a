import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * A memory cgroup for child processes, so that a benchmark can run a process as a pod with a memory
 * limit runs: Node sizes its heap, young generation included, from the limit it finds, where a
 * process on a large host sizes it from the host's memory. Needs a writable cgroup file system
 * (root, v1 `memory` controller or v2 with `memory` enabled); without one, `create` says why.
 */
export interface MemoryLimit {
  readonly limitBytes: number
  /** `command` and `args` wrapped so that the process joins the cgroup before it starts. */
  wrap(command: string, args: readonly string[]): [string, string[]]
  /** Removes the cgroup; call once every process in it has exited. */
  remove(): void
}

const V1 = '/sys/fs/cgroup/memory'
const V2 = '/sys/fs/cgroup'

function layout(): { dir: string; limitFile: string } | string {
  if (existsSync(join(V1, 'memory.limit_in_bytes'))) return { dir: V1, limitFile: 'memory.limit_in_bytes' }
  const controllers = join(V2, 'cgroup.controllers')
  if (existsSync(controllers) && readFileSync(controllers, 'utf8').split(/\s+/).includes('memory')) {
    return { dir: V2, limitFile: 'memory.max' }
  }
  return 'no memory cgroup controller is mounted at /sys/fs/cgroup'
}

/** A new memory cgroup `name` limited to `limitBytes`, or why there can be none here. */
export function createMemoryLimit(name: string, limitBytes: number): MemoryLimit | string {
  const where = layout()
  if (typeof where === 'string') return where
  const dir = join(where.dir, name)
  try {
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, where.limitFile), String(limitBytes))
  } catch (error) {
    return `cannot create the memory cgroup ${dir}: ${error instanceof Error ? error.message : String(error)}`
  }
  const procs = join(dir, 'cgroup.procs')
  return {
    limitBytes,
    // The shell moves itself into the cgroup, then becomes the command: the command's first
    // allocation already counts against the limit, and Node reads the limit at start-up.
    wrap: (command, args) => ['sh', ['-c', `echo $$ > '${procs}' && exec "$0" "$@"`, command, ...args]],
    remove: () => {
      try {
        rmdirSync(dir)
      } catch {
        // Still in use or already gone: the next run's mkdir reuses it.
      }
    },
  }
}
