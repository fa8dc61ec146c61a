import { linkSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Write } from './history.ts'

/**
 * A resource outside Kubernetes that checks fencing tokens, kept in files so that every worker process
 * can use it. Each lock has a directory of immutable versions `v<N>.json` holding
 * `{ counter, token, worker }`; a write links a complete temporary file as the next version, which fails
 * if that version exists, so two writes of the same version cannot both succeed, whatever the timing,
 * and a reader never sees a half-written version.
 *
 * A write is a read–modify–write: `read()` (then the caller pauses, as real work would), then
 * `commit()`, which refuses a token lower than the highest one the resource has accepted (fencing), and
 * refuses — and reports as a lost update — a write whose read is no longer the latest version (someone
 * else wrote in between: without mutual exclusion this is where updates get lost).
 */
export interface ResourceState {
  readonly version: number
  readonly counter: number
  /** Highest token the resource has accepted, `"0"` before any write. */
  readonly token: string
}

export type CommitOutcome = Write['outcome']

export function resourceDir(root: string, lock: string): string {
  return join(root, Buffer.from(lock).toString('hex').slice(0, 200) || 'empty')
}

export function initResource(root: string, lock: string): void {
  const dir = resourceDir(root, lock)
  mkdirSync(dir, { recursive: true })
  const temporary = join(dir, `tmp-${process.pid}-init`)
  writeFileSync(temporary, JSON.stringify({ counter: 0, token: '0', worker: '' }))
  try {
    linkSync(temporary, join(dir, 'v0.json'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
  } finally {
    unlinkSync(temporary)
  }
}

export function readResource(root: string, lock: string): ResourceState {
  const dir = resourceDir(root, lock)
  let version = -1
  for (const entry of readdirSync(dir)) {
    const match = /^v(\d+)\.json$/.exec(entry)
    if (match) version = Math.max(version, Number(match[1]))
  }
  if (version < 0) throw new Error(`resource of lock ${lock} was never initialised`)
  const data = JSON.parse(readFileSync(join(dir, `v${version}.json`), 'utf8')) as {
    counter: number
    token: string
  }
  return { version, counter: data.counter, token: data.token }
}

/** Synchronous on purpose: nothing else in the writer's process runs between the check and the write. */
export function commitResource(
  root: string,
  lock: string,
  token: string,
  read: ResourceState,
  worker: string,
): CommitOutcome {
  const latest = readResource(root, lock)
  if (BigInt(token) < BigInt(latest.token)) return 'fenced'
  if (latest.version !== read.version) return 'lost-update'
  const dir = resourceDir(root, lock)
  const temporary = join(dir, `tmp-${process.pid}-${read.version + 1}`)
  writeFileSync(temporary, JSON.stringify({ counter: read.counter + 1, token, worker }))
  try {
    linkSync(temporary, join(dir, `v${read.version + 1}.json`))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return 'race'
    throw error
  } finally {
    unlinkSync(temporary)
  }
  return 'committed'
}
