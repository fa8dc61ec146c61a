import type { Command } from 'commander'
import { OUTPUT_FORMATS } from './flags.ts'

export const SHELLS = ['bash', 'zsh'] as const
export type Shell = (typeof SHELLS)[number]

interface CommandWords {
  readonly names: readonly string[]
  readonly flags: readonly string[]
}

function wordsOf(program: Command): CommandWords[] {
  return program.commands.map((command) => ({
    names: [command.name(), ...command.aliases()],
    flags: [
      ...command.options
        .filter((option) => !option.hidden)
        .flatMap((option) => [option.short, option.long].filter((f): f is string => !!f)),
      '--help',
    ],
  }))
}

/**
 * A completion script generated from the command tree, so it never drifts from the commands: command
 * names, each command's flags, `-o` formats, namespaces and contexts (through kubectl when it is
 * installed) and lock names (through `locks list -o name`). zsh loads the bash function through
 * `bashcompinit`.
 */
export function completionScript(program: Command, shell: Shell): string {
  const commands = wordsOf(program)
  const names = commands.flatMap((command) => command.names)
  const cases = commands
    .map((command) => `    ${command.names.join('|')}) flags="${command.flags.join(' ')}" ;;`)
    .join('\n')
  const bash = `_locks_complete() {
  local cur prev flags command
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  command=""
  local i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -*) ;;
      *) command="\${COMP_WORDS[i]}"; break ;;
    esac
  done
  if [[ -z "$command" ]]; then
    COMPREPLY=($(compgen -W "${names.join(' ')} --help" -- "$cur"))
    return
  fi
  case "$prev" in
    -o|--output) COMPREPLY=($(compgen -W "${OUTPUT_FORMATS.join(' ')}" -- "$cur")); return ;;
    -n|--namespace)
      COMPREPLY=($(compgen -W "$(kubectl get namespaces -o name 2>/dev/null | sed 's|^namespace/||')" -- "$cur"))
      return ;;
    --context)
      COMPREPLY=($(compgen -W "$(kubectl config get-contexts -o name 2>/dev/null)" -- "$cur"))
      return ;;
    --kubeconfig) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  case "$command" in
${cases}
    *) flags="" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif [[ "$command" == completion ]]; then
    COMPREPLY=($(compgen -W "${SHELLS.join(' ')}" -- "$cur"))
  elif [[ "$command" == get || "$command" == release || "$command" == run ]]; then
    COMPREPLY=($(compgen -W "$(\${COMP_WORDS[0]} list -o name 2>/dev/null | sed 's|^lease.coordination.k8s.io/||')" -- "$cur"))
  fi
}
complete -F _locks_complete locks kubectl-locks
`
  if (shell === 'bash')
    return `# bash completion for locks; load with: source <(locks completion bash)\n${bash}`
  return `#compdef locks kubectl-locks
# zsh completion for locks; load with: source <(locks completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash}`
}

/** Cobra's shell completion directives, which kubectl reads from a plugin's completion executable. */
export const Directive = Object.freeze({
  default: 0,
  error: 1,
  noSpace: 2,
  noFileComp: 4,
})

export interface Completion {
  readonly candidates: readonly string[]
  readonly directive: number
}

/** Where completion finds what only the cluster or kubectl knows; each is given the cluster flags typed so far. */
export interface CompletionSources {
  /** Lease names of the locks in the namespace the flags select. */
  lockNames(clusterArgs: readonly string[]): Promise<readonly string[]>
  namespaces(clusterArgs: readonly string[]): Promise<readonly string[]>
  contexts(clusterArgs: readonly string[]): Promise<readonly string[]>
}

/** Flags whose values say which cluster and namespace: passed on to the sources. */
const CLUSTER_FLAGS = new Set(['--kubeconfig', '--context', '-n', '--namespace'])

/** The `-o` values of a command that takes templates after `=`. */
const TEMPLATE_OUTPUTS = ['jsonpath=', 'custom-columns=']

/**
 * Completion in cobra's `__complete` protocol, as kubectl asks a plugin's `kubectl_complete-<name>`:
 * `args` are the words after `kubectl locks`, the last one the word being completed (maybe empty). The
 * same words as the bash script completes: commands, flags, `-o` formats, namespaces, contexts, lock
 * names.
 */
export async function complete(
  program: Command,
  args: readonly string[],
  sources: CompletionSources,
): Promise<Completion> {
  const words = args.slice(0, -1)
  const current = args.at(-1) ?? ''
  const matching = (candidates: readonly string[], directive: number = Directive.noFileComp): Completion => ({
    candidates: candidates.filter((candidate) => candidate.startsWith(current)),
    directive,
  })
  const commandIndex = words.findIndex((word) => !word.startsWith('-'))
  const command =
    commandIndex === -1 ? undefined : program.commands.find((c) => isNamed(c, words[commandIndex]))
  if (commandIndex === -1) {
    if (current.startsWith('-')) return matching(['--help'])
    return matching(program.commands.map((c) => c.name()))
  }
  if (command === undefined) return { candidates: [], directive: Directive.noFileComp }
  const after = words.slice(commandIndex + 1)
  const dashDash = after.indexOf('--')
  // The command of `locks run`: files, as the shell completes them.
  if (dashDash !== -1) return { candidates: [], directive: Directive.default }

  const takesValue = (word: string | undefined) => {
    const option = command.options.find((o) => word !== undefined && (o.short === word || o.long === word))
    return option !== undefined && (option.required || option.optional) ? option : undefined
  }
  const clusterArgs: string[] = []
  const positionals: string[] = []
  for (let i = 0; i < after.length; i++) {
    const word = after[i] as string
    if (takesValue(word) !== undefined) {
      const value = after[i + 1]
      if (CLUSTER_FLAGS.has(word) && value !== undefined) clusterArgs.push(word, value)
      i++
    } else if (!word.startsWith('-')) positionals.push(word)
  }

  const option = takesValue(words.at(-1))
  if (option !== undefined) {
    if (option.long === '--output') {
      const choices = option.argChoices ?? [...OUTPUT_FORMATS, ...TEMPLATE_OUTPUTS]
      const found = matching(choices)
      const open = found.candidates.length > 0 && found.candidates.every((c) => c.endsWith('='))
      return open ? { ...found, directive: Directive.noFileComp | Directive.noSpace } : found
    }
    if (option.long === '--namespace') return matching(await sources.namespaces(clusterArgs))
    if (option.long === '--context') return matching(await sources.contexts(clusterArgs))
    if (option.long === '--kubeconfig') return { candidates: [], directive: Directive.default }
    return { candidates: [], directive: Directive.noFileComp }
  }
  if (current.startsWith('-')) {
    return matching(wordsOf(program).find((c) => c.names.includes(command.name()))?.flags ?? [])
  }
  if (command.name() === 'completion' && positionals.length === 0) return matching(SHELLS)
  if (command.name() === 'help' && positionals.length === 0)
    return matching(program.commands.map((c) => c.name()))
  if (['get', 'release', 'run'].includes(command.name()) && positionals.length === 0) {
    return matching(await sources.lockNames(clusterArgs))
  }
  return { candidates: [], directive: Directive.noFileComp }
}

function isNamed(command: Command, word: string | undefined): boolean {
  return word !== undefined && (command.name() === word || command.aliases().includes(word))
}

/** Cobra's output: one candidate a line, then `:<directive>`. */
export function formatCompletion(completion: Completion): string {
  return `${completion.candidates.map((candidate) => `${candidate}\n`).join('')}:${completion.directive}\n`
}
