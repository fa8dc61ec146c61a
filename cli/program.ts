// The CLI for code: what tests and fixtures drive (`runCli`) and the helpers of the commands they check.
// cli/main.ts imports cli/commands.ts alone, which loads none of the commands until one runs.
export { buildProgram, runCli } from './commands.ts'
export { type CliContext, candidateLeaseNames, KEYS } from './session.ts'
