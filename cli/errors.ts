import { ExitCode } from './exit-codes.ts'

/** A failure to report on one line of stderr, with the exit code that classifies it. */
export class CliError extends Error {
  readonly exitCode: number

  constructor(message: string, options?: ErrorOptions & { readonly exitCode?: number }) {
    super(message, options)
    this.name = 'CliError'
    this.exitCode = options?.exitCode ?? ExitCode.failure
  }
}

/** The command line itself was wrong; nothing was attempted. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, { exitCode: ExitCode.usage })
    this.name = 'UsageError'
  }
}

/** One line, whatever the error: the message of a multi-line error is folded. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, '; ').trim()
}
