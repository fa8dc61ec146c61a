import { LOCK_NAME_ANNOTATION } from '../sdk/internal.ts'
import type { LeaseJson } from './api.ts'
import { CliError } from './errors.ts'
import { ExitCode } from './exit-codes.ts'
import type { Item } from './output.ts'
import { freedLease, type ReleaseOutcome, releaseOnceExpired, seconds, waitMessage } from './release-wait.ts'
import { cell, isHeld } from './rows.ts'
import type { CliContext, Session } from './session.ts'

/**
 * `locks release` of a shared lock or a semaphore: each holder has a record of its own (see
 * `sdk/holders.ts`), and each record is released as one lock's lease is — the same "free" write under
 * its uid and resourceVersion, the same wait for it to expire. Records that name no holder any more
 * are left for the controller, which deletes them after its retention, as it deletes free locks.
 *
 * - `--holder ID`: that holder's record only (or the lock's own lease, if ID holds that), now.
 * - `--force`: every holder's record, and the lock's own lease if it is held, now, one write each.
 * - neither: every one of them once this machine has seen it unchanged for its duration plus the grace;
 *   those still renewed after `--timeout` are left as they are.
 *
 * Each write that happens is reported on stdout; whatever was left as it was makes it fail (exit 1).
 */

export interface HolderReleaseOptions {
  readonly force?: boolean | undefined
  readonly holder?: string | undefined
  /** Seconds the lease must stay unchanged beyond its duration. */
  readonly grace: number
  /** Seconds to wait in all. */
  readonly timeout: number
}

/** One lease `release` may free: a holder's record, or the lock's own lease. */
interface Target {
  readonly item: Item
  readonly kind: 'lock' | 'record'
}

export async function releaseHolders(
  ctx: CliContext,
  session: Session,
  name: string,
  lock: Item,
  records: readonly Item[],
  options: HolderReleaseOptions,
): Promise<number> {
  const lockName = lock.view.annotations[LOCK_NAME_ANNOTATION] ?? lock.view.name
  const where = `in namespace \`${lock.view.namespace}\``
  const targets: Target[] = [
    ...(lock.absent !== true && isHeld(lock.view) ? [{ item: lock, kind: 'lock' as const }] : []),
    ...records.filter((record) => isHeld(record.view)).map((item) => ({ item, kind: 'record' as const })),
  ]
  const holderOf = (target: Target) => target.item.view.holderIdentity ?? ''
  const subject = (target: Target) =>
    target.kind === 'lock'
      ? `lock \`${lockName}\` ${where}`
      : `holder \`${holderOf(target)}\` of lock \`${lockName}\` ${where}`
  /** How stdout names a target, as `release` of a lock names it. */
  const said = (target: Target) =>
    target.kind === 'lock'
      ? `lock "${cell(lockName)}" ${where}`
      : `lock "${cell(lockName)}" ${where}: holder "${cell(holderOf(target))}"`
  const report = (target: Target, freed: LeaseJson, how: string | undefined) => {
    const versions = `resourceVersion ${target.item.json.metadata?.resourceVersion ?? '?'} -> ${freed.metadata?.resourceVersion ?? '?'}`
    const why =
      how !== undefined
        ? `: ${how}`
        : target.kind === 'lock'
          ? `: it was held by "${cell(holderOf(target))}"`
          : ''
    const lease = target.kind === 'lock' ? 'lease' : 'holder record'
    ctx.stdout(`${said(target)} released${why} (${lease} ${target.item.view.name}, ${versions})\n`)
  }
  const changedMeanwhile = (left: readonly Target[]) =>
    new CliError(
      `${left.map(subject).join(', ')} changed while being released (renewed, released or deleted by someone else) and ${left.length === 1 ? 'was' : 'were'} left as ${left.length === 1 ? 'it was' : 'they were'}: run \`locks get ${name}\` to see the lock's state, then try again`,
    )

  if (options.holder !== undefined) {
    const target = targets.find((candidate) => holderOf(candidate) === options.holder)
    if (target === undefined) {
      throw new CliError(
        `lock \`${lockName}\` ${where} is held by ${targets.map((t) => `\`${holderOf(t)}\``).join(', ')}, not by \`${options.holder}\`; nothing was changed: check --holder, or see \`locks get ${name}\``,
      )
    }
    const freed = await session.api.replace(freedLease(target.item.json, ctx.now()), ctx.signal)
    if (freed === undefined) throw changedMeanwhile([target])
    report(target, freed, undefined)
    return ExitCode.ok
  }

  if (options.force) {
    // The operator's explicit order, for every holder: one write each under the preconditions read.
    const changed: Target[] = []
    for (const target of targets) {
      const freed = await session.api.replace(freedLease(target.item.json, ctx.now()), ctx.signal)
      if (freed === undefined) changed.push(target)
      else report(target, freed, undefined)
    }
    if (changed.length > 0) throw changedMeanwhile(changed)
    return ExitCode.ok
  }

  const graceMs = options.grace * 1000
  const timeoutMs = options.timeout * 1000
  const outcomes = await Promise.all(
    targets.map(async (target) => ({
      target,
      outcome: await releaseOnceExpired(target.item.json, {
        api: session.api,
        monotonic: ctx.monotonic ?? (() => performance.now()),
        wallNow: ctx.now,
        graceMs,
        timeoutMs,
        signal: ctx.signal,
        onWait: (wait) => ctx.stderr(`${waitMessage(ctx, subject(target), wait, graceMs, timeoutMs)}\n`),
      }),
    })),
  ).catch((error: unknown) => {
    if (ctx.signal.aborted) throw ctx.signal.reason
    throw error
  })
  const left: { target: Target; outcome: ReleaseOutcome }[] = []
  for (const { target, outcome } of outcomes) {
    switch (outcome.kind) {
      case 'freed':
        report(
          target,
          outcome.freed,
          `its lease was seen unchanged for ${seconds(outcome.neededMs)} s (duration ${seconds(outcome.neededMs - graceMs)} s + grace ${seconds(graceMs)} s)`,
        )
        break
      case 'free':
      case 'released':
      case 'deleted':
        ctx.stdout(
          `${said(target)} came free while release waited (released or deleted); nothing was changed\n`,
        )
        break
      default:
        left.push({ target, outcome })
    }
  }
  if (left.length === 0) return ExitCode.ok
  const heldBy = (kind: ReleaseOutcome['kind']) =>
    left.filter(({ outcome }) => outcome.kind === kind).map(({ target }) => `\`${holderOf(target)}\``)
  const still = [
    ...when(
      heldBy('timed-out'),
      (list) => `is still held by ${list.join(', ')} after --timeout ${seconds(timeoutMs)} s`,
    ),
    ...when(
      heldBy('never-expires'),
      (list) => `is held by ${list.join(', ')} with no leaseDurationSeconds, which never expires`,
    ),
    ...when(
      heldBy('not-managed'),
      (list) => `had the lease of ${list.join(', ')} lose the label of kube-locks`,
    ),
  ]
  const longest = Math.max(
    0,
    ...left.map(({ outcome }) => (outcome.kind === 'timed-out' ? outcome.neededMs : 0)),
  )
  const longer =
    longest > timeoutMs
      ? `, or --timeout ${Math.ceil(longest / 1000)} or more to wait until they count as expired`
      : ', or a longer --timeout'
  throw new CliError(
    `lock \`${lockName}\` ${where} ${still.join(', and ')}; ${left.length === 1 ? 'it was left as it was' : 'they were left as they were'}: pass --holder ID to release one holder now, --force to release every holder now (a holder that still runs keeps running beside the next holder)${longer}`,
  )
}

/** `[make(list)]` when `list` has items, else nothing. */
function when<T>(list: readonly string[], make: (list: readonly string[]) => T): T[] {
  return list.length === 0 ? [] : [make(list)]
}
