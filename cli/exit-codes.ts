import { constants } from 'node:os'

/**
 * Exit codes of `locks`. They are part of the interface: scripts branch on them, so they never change.
 *
 * `run` passes the command's own exit status through; the codes below that it can also return were
 * chosen away from the ones shells and common tools use, except 126/127/128+N, which mean what a shell
 * means by them.
 */
export const ExitCode = Object.freeze({
  /** Done. */
  ok: 0,
  /** A runtime failure: no cluster configured, server unreachable, forbidden, not found, a conflict. */
  failure: 1,
  /** The command line was wrong: an unknown flag, a missing argument, a bad value. Nothing was done. */
  usage: 2,
  /** `run`: the lock stayed held by someone else until `--timeout` passed; the command did not run. */
  notAcquired: 75,
  /** `run`: the lock was lost while the command ran; the command's process group was terminated. */
  lost: 76,
  /**
   * `run`: the lock is in use in another mode (a semaphore of another `--limit`, shared against
   * semaphore); the command did not run. Like sysexits' EX_CONFIG: the callers disagree on how to use
   * the name, and waiting does not settle that.
   */
  modeConflict: 78,
  /** `run`: the command was found but could not be started (for example, not executable). */
  cannotExecute: 126,
  /** `run`: the command was not found. */
  notFound: 127,
  /** `run`: the command was ended by signal N: exit status 128 + N. */
  signalBase: 128,
})

/** The exit status of a CLI stopped by the signal that aborted `signal`: 128 + its number. */
export function interrupted(signal: AbortSignal): number {
  const name = typeof signal.reason === 'string' ? signal.reason : 'SIGINT'
  return ExitCode.signalBase + (constants.signals[name as NodeJS.Signals] ?? constants.signals.SIGINT)
}
