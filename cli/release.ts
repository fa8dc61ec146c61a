import { LOCK_NAME_ANNOTATION, MANAGED_BY_SELECTOR, RECLAIM_DEFAULTS } from '../sdk/internal.ts'
import type { LeaseJson } from './api.ts'
import { CliError, UsageError } from './errors.ts'
import { ExitCode } from './exit-codes.ts'
import { releaseHolders } from './release-holders.ts'
import { freedLease, releaseOnceExpired, seconds, waitMessage } from './release-wait.ts'
import { cell, isHeld } from './rows.ts'
import { type CliContext, type CommonFlags, findLockWithHolders, Session } from './session.ts'

// `locks release`: frees a lock by hand, once it has expired as every client judges it (release-wait.ts),
// or at once on an operator's order; a shared lock or semaphore holder by holder (release-holders.ts).

export { DEFAULT_RELEASE_TIMEOUT } from './flags.ts'

export interface ReleaseFlags extends CommonFlags {
  readonly force?: boolean
  readonly holder?: string
  readonly expiryGrace?: number
  /** The old name of `expiryGrace`, still accepted. */
  readonly grace?: number
  readonly timeout: number
}

export async function releaseCommand(ctx: CliContext, name: string, flags: ReleaseFlags): Promise<number> {
  // `--grace` is still accepted and not warned about: scripts parse what `release` writes on stderr.
  if (flags.grace !== undefined && flags.expiryGrace !== undefined) {
    throw new UsageError('--grace is the old name of --expiry-grace: give only --expiry-grace')
  }
  const grace = flags.expiryGrace ?? flags.grace ?? RECLAIM_DEFAULTS.grace
  await using session = new Session(ctx, flags)
  const found = await findLockWithHolders(session, name)
  const held = found.records.filter((record) => isHeld(record.view))
  // A shared lock or semaphore: its holders' records, one by one (release-holders.ts).
  if (held.length > 0) {
    return releaseHolders(ctx, session, name, found.lock, held, { ...flags, grace })
  }
  const { json, view } = found.lock
  const lockName = view.annotations[LOCK_NAME_ANNOTATION] ?? view.name
  const where = `in namespace \`${view.namespace}\``
  if (!isHeld(view)) {
    ctx.stdout(`lock "${cell(lockName)}" ${where} is already free\n`)
    return ExitCode.ok
  }
  const holder = view.holderIdentity as string
  if (flags.holder !== undefined && flags.holder !== holder) {
    throw new CliError(
      `lock \`${lockName}\` ${where} is held by \`${holder}\`, not \`${flags.holder}\`; nothing was changed: check --holder, or see \`locks get ${name}\``,
    )
  }
  const report = (freed: LeaseJson, how: string) => {
    ctx.stdout(
      `lock "${cell(lockName)}" ${where} released: ${how} (lease ${view.name}, resourceVersion ${json.metadata?.resourceVersion ?? '?'} -> ${freed.metadata?.resourceVersion ?? '?'})\n`,
    )
    return ExitCode.ok
  }
  if (flags.force || flags.holder !== undefined) {
    // The operator's explicit order: no judgement of expiry, one write under the preconditions read.
    const freed = await session.api.replace(freedLease(json, ctx.now()), ctx.signal)
    if (freed === undefined) {
      throw new CliError(
        `lock \`${lockName}\` ${where} changed while it was being released (renewed, taken over, released or deleted by someone else); nothing was changed: run \`locks get ${name}\` to see its state, then try again`,
      )
    }
    return report(freed, `it was held by "${cell(holder)}"`)
  }

  const graceMs = grace * 1000
  const timeoutMs = flags.timeout * 1000
  const outcome = await releaseOnceExpired(json, {
    api: session.api,
    monotonic: ctx.monotonic ?? (() => performance.now()),
    wallNow: ctx.now,
    graceMs,
    timeoutMs,
    signal: ctx.signal,
    onWait: (wait) =>
      ctx.stderr(`${waitMessage(ctx, `lock \`${lockName}\` ${where}`, wait, graceMs, timeoutMs)}\n`),
  }).catch((error: unknown) => {
    if (ctx.signal.aborted) throw ctx.signal.reason
    throw error
  })
  switch (outcome.kind) {
    case 'freed':
      return report(
        outcome.freed,
        `its lease was seen unchanged for ${seconds(outcome.neededMs)} s (duration ${seconds(outcome.neededMs - graceMs)} s + grace ${seconds(graceMs)} s)`,
      )
    case 'free':
      ctx.stdout(`lock "${cell(lockName)}" ${where} is already free\n`)
      return ExitCode.ok
    case 'released':
      ctx.stdout(
        `lock "${cell(lockName)}" ${where} is free: its holder released it while release waited; nothing was changed\n`,
      )
      return ExitCode.ok
    case 'deleted':
      ctx.stdout(`lock "${cell(lockName)}" ${where} was deleted while release waited; nothing was changed\n`)
      return ExitCode.ok
    case 'not-managed':
      throw new CliError(
        `lease \`${view.namespace}/${view.name}\` lost the label ${MANAGED_BY_SELECTOR} while release waited; it is no longer a kube-locks lock, and nothing was changed: use kubectl for it`,
      )
    case 'never-expires':
      throw new CliError(
        `lock \`${lockName}\` ${where} is held by \`${holder}\` and its lease has no leaseDurationSeconds, so it never expires; nothing was changed: pass --force to release it anyway (a holder that still runs keeps running beside the next holder)`,
      )
    case 'timed-out': {
      const current = outcome.lease.spec?.holderIdentity ?? holder
      const renewed =
        outcome.changes === 0
          ? ''
          : ` (it changed ${outcome.changes} time${outcome.changes === 1 ? '' : 's'} meanwhile: its holder is likely still running)`
      const longer =
        outcome.neededMs > timeoutMs
          ? `, or --timeout ${Math.ceil(outcome.neededMs / 1000)} or more to wait until it counts as expired (${seconds(outcome.neededMs)} s unchanged)`
          : ', or a longer --timeout'
      throw new CliError(
        `lock \`${lockName}\` ${where} is still held by \`${current}\` after --timeout ${seconds(timeoutMs)} s${renewed}; nothing was changed: pass --force to release it anyway (a holder that still runs keeps running beside the next holder), --holder ${current} to release it only while that holder has it${longer}`,
      )
    }
  }
}
