import { type Cluster, KubeConfigError, loadCluster as loadClusterByKubectlRules } from '../sdk/internal.ts'
import { CliError } from './errors.ts'

export interface ClusterFlags {
  readonly kubeconfig?: string | undefined
  readonly context?: string | undefined
  readonly namespace?: string | undefined
}

export interface LoadEnvironment {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly home: string | undefined
}

/**
 * The cluster by kubectl's rules (the SDK's `loadCluster`): `--kubeconfig`, else `KUBECONFIG`, else
 * `~/.kube/config`, else the pod's service account; then `--context` picks the context. What is wrong
 * is said on one line, with the flag or command that fixes it.
 */
export function loadCluster(flags: ClusterFlags, environment: LoadEnvironment): Cluster {
  try {
    return loadClusterByKubectlRules({
      kubeconfig: flags.kubeconfig,
      context: flags.context,
      env: environment.env,
      home: environment.home,
    })
  } catch (error) {
    if (!(error instanceof KubeConfigError)) throw error
    throw new CliError(messageOf(error, environment), { cause: error })
  }
}

function messageOf(error: KubeConfigError, environment: LoadEnvironment): string {
  switch (error.problem) {
    case 'file-not-found':
      return `the kubeconfig file ${error.path} does not exist: check the --kubeconfig path`
    case 'env-files-not-found':
      return `no kubeconfig file named by KUBECONFIG exists (${environment.env.KUBECONFIG}): fix KUBECONFIG or pass --kubeconfig`
    case 'not-configured':
      return 'no cluster configured: pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config (for example with `kubectl config set-cluster`)'
    case 'unreadable': {
      const cause = error.cause
      const detail = cause instanceof Error ? cause.message.split('\n')[0] : String(cause)
      return `cannot read the kubeconfig (${detail}): fix the file or pass another with --kubeconfig`
    }
    case 'unknown-context': {
      const choices = error.contexts.length > 0 ? `: choose one of ${error.contexts.join(', ')}` : ''
      return `the kubeconfig has no context \`${error.context}\`${choices}`
    }
    case 'no-current-context':
      return 'the kubeconfig has no current context: pass --context NAME or run `kubectl config use-context NAME`'
    case 'no-server':
      return `the context \`${error.context}\` names no cluster with a server: fix the kubeconfig or pass another --context`
  }
}

/** `--namespace`, else the context's (or service account's) namespace, else `default`, like kubectl. */
export function namespaceOf(cluster: Cluster, flag: string | undefined): string {
  if (flag !== undefined && flag !== '') return flag
  return cluster.namespace ?? 'default'
}
