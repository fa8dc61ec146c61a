import type { LeaseDraft, LeaseRecord } from '../lease-record.ts'
import type { LeaseStore } from '../lease-store.ts'

/** One expected store call and its answer (a value, or an error to throw). */
export type ScriptedCall =
  | { readonly op: 'get'; readonly answer: LeaseRecord | undefined | Error }
  | { readonly op: 'create'; readonly answer: ((draft: LeaseDraft) => LeaseRecord) | Error }
  | { readonly op: 'update'; readonly answer: ((record: LeaseRecord) => LeaseRecord) | Error }

export interface ScriptedStore extends LeaseStore {
  /** Arguments of every call made, in order. */
  readonly received: { op: string; arg: unknown }[]
  /** Calls the script still expects. */
  readonly remaining: number
}

/**
 * A store spy that expects exactly the scripted calls, in order, and fails any other call with an error
 * naming it: a step function that makes an extra or a different request fails its test.
 */
export function scriptedStore(script: readonly ScriptedCall[]): ScriptedStore {
  const queue = [...script]
  const received: { op: string; arg: unknown }[] = []
  const next = (op: string, arg: unknown): ScriptedCall => {
    received.push({ op, arg })
    const expected = queue.shift()
    if (expected === undefined || expected.op !== op) {
      throw new UnexpectedCallError(
        `unexpected store call ${op}(${JSON.stringify(arg)}); expected ${expected ? expected.op : 'no more calls'}`,
      )
    }
    return expected
  }
  const unexpected = (op: string) => async () => {
    throw new UnexpectedCallError(`unexpected store call ${op}`)
  }
  return {
    server: 'scripted',
    received,
    get remaining() {
      return queue.length
    },
    async get(namespace, name) {
      const call = next('get', { namespace, name })
      if (call.answer instanceof Error) throw call.answer
      return call.answer as LeaseRecord | undefined
    },
    async create(draft) {
      const call = next('create', draft)
      if (call.answer instanceof Error) throw call.answer
      return (call.answer as (draft: LeaseDraft) => LeaseRecord)(draft)
    },
    async update(record) {
      const call = next('update', record)
      if (call.answer instanceof Error) throw call.answer
      return (call.answer as (record: LeaseRecord) => LeaseRecord)(record)
    },
    delete: unexpected('delete'),
    list: unexpected('list'),
    watch: unexpected('watch'),
  }
}

export class UnexpectedCallError extends Error {
  override name = 'UnexpectedCallError'
}
