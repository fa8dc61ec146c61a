import { type DestinationStream, type Logger as Pino, pino } from 'pino'
import type { Logger } from '../sdk/internal.ts'

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value)
}

/** The SDK's {@link Logger}, every level present, and loggers that add fields to every line. */
export interface ControllerLogger extends Required<Logger> {
  /** A logger whose lines all carry `bindings` (after `time`, `level` and before the line's fields). */
  child(bindings: Record<string, unknown>): ControllerLogger
}

/**
 * One JSON object per line, written by pino: `level` (the name: `debug`, `info`, `warn`, `error`),
 * `time` (ISO 8601), the child bindings and the fields, then `msg`. Lease fields always use the keys
 * `lock` (the original lock name), `namespace`, `lease`, `holder` and `resourceVersion`, so log
 * queries keep working across releases. An error, in any field, becomes `{name, message, code,
 * stack, cause}` (its `cause` described the same way); bigints are written as decimal strings,
 * `undefined` fields are left out.
 *
 * `write` receives whole lines; by default they go to stdout synchronously, so that the last lines
 * before an exit are not lost.
 */
export function createJsonLogger(level: LogLevel, write?: (line: string) => void): ControllerLogger {
  const destination: DestinationStream = write ? { write } : pino.destination({ dest: 1, sync: true })
  return wrap(
    pino(
      {
        level,
        base: undefined,
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: {
          level: (label) => ({ level: label }),
          log: plainFields,
        },
      },
      destination,
    ),
  )
}

function wrap(logger: Pino): ControllerLogger {
  // pino takes (fields, message); the SDK's interface is (message, fields).
  const at =
    (method: 'debug' | 'info' | 'warn' | 'error') => (msg: string, fields?: Record<string, unknown>) => {
      if (fields === undefined) logger[method](msg)
      else logger[method](fields, msg)
    }
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    // pino writes a child's bindings without the log formatter: they are made plain here.
    child: (bindings) => wrap(logger.child(plainFields(bindings))),
  }
}

function plainFields(fields: Record<string, unknown> | undefined): Record<string, unknown> {
  const record: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(fields ?? {})) {
    if (value !== undefined) record[key] = plain(value)
  }
  return record
}

function plain(value: unknown, seen = new Set<unknown>()): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (typeof value !== 'object' || value === null || seen.has(value)) return value
  if (value instanceof Error) return describeError(value, seen)
  // Plain objects and arrays are walked for nested bigints and errors; anything else (a Date, a
  // class instance) is left to JSON.stringify.
  if (Array.isArray(value)) {
    seen.add(value)
    return value.map((item) => plain(item, seen))
  }
  const prototype = Object.getPrototypeOf(value)
  if (prototype !== Object.prototype && prototype !== null) return value
  seen.add(value)
  const record: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) {
    if (item !== undefined) record[key] = plain(item, seen)
  }
  return record
}

function describeError(error: Error, seen: Set<unknown>): Record<string, unknown> {
  seen.add(error)
  const code = (error as { code?: unknown }).code
  const record: Record<string, unknown> = { name: error.name, message: error.message }
  if (code !== undefined) record.code = plain(code, seen)
  if (error.stack !== undefined) record.stack = error.stack
  const cause: unknown = error.cause
  if (cause !== undefined && !seen.has(cause)) {
    record.cause = plain(cause, seen)
  }
  return record
}
