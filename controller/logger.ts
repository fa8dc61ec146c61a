import type { Logger } from '../sdk/internal.ts'

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value)
}

/**
 * One JSON object per line: `time`, `level`, `msg`, then the fields. Lease fields always use the keys
 * `lock` (the original lock name), `namespace`, `lease`, `holder` and `resourceVersion`, so log queries
 * keep working across releases. Errors are flattened to their message and code.
 */
export function createJsonLogger(
  level: LogLevel,
  write: (line: string) => void = writeStdout,
): Required<Logger> {
  const threshold = LOG_LEVELS.indexOf(level)
  const emit = (at: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (LOG_LEVELS.indexOf(at) < threshold) return
    const record: Record<string, unknown> = { time: new Date().toISOString(), level: at, msg }
    for (const [key, value] of Object.entries(fields ?? {})) {
      if (value !== undefined) record[key] = value instanceof Error ? describeError(value) : value
    }
    write(`${JSON.stringify(record, bigintSafe)}\n`)
  }
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') }
}

function describeError(error: Error): Record<string, unknown> {
  const code = (error as { code?: unknown }).code
  return { name: error.name, message: error.message, ...(code === undefined ? {} : { code }) }
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value
}

function writeStdout(line: string): void {
  process.stdout.write(line)
}
