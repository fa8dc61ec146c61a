import { queueSelector } from '../sdk/internal.ts'
import { ExitCode } from './exit-codes.ts'
import { DEFAULT_CHUNK_SIZE } from './flags.ts'
import { checkOutput, formatItems, type Output } from './output.ts'
import { Queues } from './queue.ts'
import { type CliContext, type CommonFlags, findLock, itemOf, KEYS, Session } from './session.ts'

export interface GetFlags extends CommonFlags {
  readonly output: Output
  readonly headers: boolean
}

/** One lock, and its queue: the waiters' tickets, first in line first. */
export async function getCommand(ctx: CliContext, name: string, flags: GetFlags): Promise<number> {
  checkOutput(flags.output)
  await using session = new Session(ctx, flags)
  const lock = await findLock(session, name)
  const options = {
    format: flags.output,
    allNamespaces: false,
    noHeaders: !flags.headers,
    now: ctx.now(),
    keys: KEYS,
  }
  if (flags.output === 'name') {
    ctx.stdout(formatItems([lock], options, true))
    return ExitCode.ok
  }
  const tickets = await session.api.list(
    lock.view.namespace,
    { labelSelector: queueSelector(lock.view.name), chunkSize: DEFAULT_CHUNK_SIZE },
    ctx.signal,
  )
  const queue = new Queues(tickets.items.map(itemOf)).of(lock)
  ctx.stdout(formatItems([{ ...lock, waiting: queue.length, queue }], options, true))
  return ExitCode.ok
}
