import { createInterface, type Interface } from 'node:readline'

/** One JSON object per line, as the controller logs and the workers of the tooling report. */
export type JsonRecord = Record<string, unknown>

/**
 * Reads `input` line by line and hands each line that holds a JSON object to `onRecord`; any other
 * line (text, a number, a broken object) goes to `onOther`, or is dropped without it. A last line
 * without a newline counts once the stream ends.
 */
export function readJsonLines(
  input: NodeJS.ReadableStream,
  onRecord: (record: JsonRecord, line: string) => void,
  onOther?: (line: string) => void,
): Interface {
  return readLines(input, (line) => {
    const record = parseRecord(line)
    if (record === undefined) onOther?.(line)
    else onRecord(record, line)
  })
}

/**
 * Reads `input` line by line, for output that is text (a build's progress, a table): each line,
 * without its line break, goes to `onLine`. A last line without a newline counts once the stream ends.
 */
export function readLines(input: NodeJS.ReadableStream, onLine: (line: string) => void): Interface {
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })
  lines.on('line', onLine)
  return lines
}

/** The object a line holds, or `undefined` when it holds something else. */
export function parseRecord(line: string): JsonRecord | undefined {
  if (!line.trimStart().startsWith('{')) return undefined
  try {
    const value: unknown = JSON.parse(line)
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as JsonRecord)
      : undefined
  } catch {
    return undefined
  }
}
