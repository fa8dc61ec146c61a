import { queueSelector } from '../sdk/internal.ts'
import { ExitCode } from './exit-codes.ts'
import { DEFAULT_CHUNK_SIZE } from './flags.ts'
import { holderState, lineOf } from './holders.ts'
import { checkOutput, formatItems, type Output } from './output.ts'
import { Queues } from './queue.ts'
import { type CliContext, type CommonFlags, findLockWithHolders, itemOf, KEYS, Session } from './session.ts'

export interface GetFlags extends CommonFlags {
  readonly output: Output
  readonly headers: boolean
}

/** One lock, its holders (of a shared lock or a semaphore), and its line: the waiters, first first. */
export async function getCommand(ctx: CliContext, name: string, flags: GetFlags): Promise<number> {
  checkOutput(flags.output)
  await using session = new Session(ctx, flags)
  const { lock, records } = await findLockWithHolders(session, name)
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
  const holding = holderState(lock, records, options.now)
  const queue = lineOf(lock, new Queues(tickets.items.map(itemOf)).of(lock), holding)
  ctx.stdout(formatItems([{ ...lock, holding, waiting: queue.length, queue }], options, true))
  return ExitCode.ok
}
