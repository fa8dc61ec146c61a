import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
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

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token'

/**
 * Loads the cluster configuration like kubectl: `--kubeconfig`, else `KUBECONFIG`, else
 * `~/.kube/config`, else the pod's service account; then `--context` picks the context. Fails with a
 * one-line message when there is nothing to load, instead of falling back to `localhost:8080`.
 */
export function loadKubeConfig(flags: ClusterFlags, environment: LoadEnvironment): KubeConfig {
  const config = new KubeConfig()
  const { env, home } = environment
  const homeConfig = home === undefined ? undefined : join(home, '.kube', 'config')
  try {
    if (flags.kubeconfig !== undefined) {
      if (!existsSync(flags.kubeconfig)) {
        throw new CliError(
          `the kubeconfig file ${flags.kubeconfig} does not exist: check the --kubeconfig path`,
        )
      }
      config.loadFromFile(flags.kubeconfig)
    } else if (env.KUBECONFIG) {
      const files = env.KUBECONFIG.split(':').filter((file) => file !== '')
      const missing = files.filter((file) => !existsSync(file))
      if (missing.length === files.length) {
        throw new CliError(
          `no kubeconfig file named by KUBECONFIG exists (${env.KUBECONFIG}): fix KUBECONFIG or pass --kubeconfig`,
        )
      }
      const existing = files.filter((file) => existsSync(file))
      config.loadFromFile(existing[0] as string)
      // Like kubectl, the first file that sets a value wins, the current context included.
      for (const file of existing.slice(1)) {
        const next = new KubeConfig()
        next.loadFromFile(file)
        config.mergeConfig(next, true)
      }
    } else if (homeConfig !== undefined && existsSync(homeConfig)) {
      config.loadFromFile(homeConfig)
    } else if (env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) {
      config.loadFromCluster()
    } else {
      throw new CliError(
        'no cluster configured: pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config (for example with `kubectl config set-cluster`)',
      )
    }
  } catch (error) {
    if (error instanceof CliError) throw error
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error)
    throw new CliError(
      `cannot read the kubeconfig (${detail}): fix the file or pass another with --kubeconfig`,
      {
        cause: error,
      },
    )
  }
  if (flags.context !== undefined) {
    if (config.getContextObject(flags.context) === null) {
      const known = config.getContexts().map((context) => context.name)
      const choices = known.length > 0 ? `: choose one of ${known.join(', ')}` : ''
      throw new CliError(`the kubeconfig has no context \`${flags.context}\`${choices}`)
    }
    config.setCurrentContext(flags.context)
  } else if (!config.getCurrentContext() || config.getContextObject(config.getCurrentContext()) === null) {
    throw new CliError(
      'the kubeconfig has no current context: pass --context NAME or run `kubectl config use-context NAME`',
    )
  }
  if (!config.getCurrentCluster()?.server) {
    throw new CliError(
      `the context \`${config.getCurrentContext()}\` names no cluster with a server: fix the kubeconfig or pass another --context`,
    )
  }
  return config
}

/** `--namespace`, else the current context's namespace, else `default`, like kubectl. */
export function namespaceOf(config: KubeConfig, flag: string | undefined): string {
  if (flag !== undefined && flag !== '') return flag
  const context = config.getContextObject(config.getCurrentContext())
  const fromContext = context?.namespace?.trim()
  return fromContext ? fromContext : 'default'
}
