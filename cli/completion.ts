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
