/**
 * `npm run test:soak [-- --acquisitions N …]`: the fault suite's workers and checker under every fault
 * of the suite at once, on a local etcd and kube-apiserver, until N acquisitions have been checked.
 * Prints progress on stderr, the report as a table on stdout, and writes it as JSON.
 *
 * Exit code: 0 when the count was reached with no violation; 1 on any violation or harness error;
 * 2 on a usage error; 3 when it stopped early (time limit) with no violation; 130 on SIGINT/SIGTERM.
 */
import { faultsSeed } from '../faults/random.ts'
import { parseSoakOptions, USAGE, UsageError } from './options.ts'
import { buildReport, formatReport, Tally, writeReport } from './report.ts'
import { Soak, type SoakOutcome } from './soak.ts'

const log = (line: string) => process.stderr.write(`${line}\n`)

let options: ReturnType<typeof parseSoakOptions>
try {
  options = parseSoakOptions(process.argv.slice(2))
} catch (error) {
  if (
    !(error instanceof UsageError) &&
    (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') !== true
  )
    throw error
  process.stderr.write(`${(error as Error).message}\n\n${USAGE}`)
  process.exit(2)
}
if (options === 'help') {
  process.stdout.write(USAGE)
  process.exit(0)
}

const seed = faultsSeed()
const tally = new Tally()
const soak = new Soak(options, seed, tally, log)
const interrupt = new AbortController()
let interrupted = false
const onSignal = (signal: NodeJS.Signals) => {
  if (interrupted) {
    log(`${signal} again: killing everything now`)
    soak.killNow()
    process.exit(130)
  }
  interrupted = true
  log(`${signal}: winding down (checking what ran so far, then cleaning up); again to kill at once`)
  interrupt.abort()
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)
process.once('exit', () => soak.killNow())

log(`soak: ${options.acquisitions} acquisitions, FAULTS_SEED=${seed}, report ${options.report}`)
let outcome: SoakOutcome
try {
  outcome = await soak.run(interrupt.signal)
} catch (error) {
  tally.errors.push(String((error as Error)?.stack ?? error))
  outcome = { acquisitions: soak.acquisitions, stoppedBecause: `error: ${String(error).slice(0, 200)}` }
} finally {
  await soak.close()
}

const report = buildReport(tally, options, seed, outcome.acquisitions, outcome.stoppedBecause)
writeReport(options.report, report)
process.stdout.write(`${formatReport(report)}\n`)
log(`report written to ${options.report}`)
for (const example of report.violationExamples) log(example)
for (const error of report.errors) log(`harness error: ${error}`)

if (report.violationsTotal > 0 || report.errors.length > 0) process.exitCode = 1
else if (interrupted) process.exitCode = 130
else if (report.partial) process.exitCode = 3
else process.exitCode = 0
