#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander'
import {
  type Cluster,
  createClusterLeaseStore,
  createLocks,
  loadCluster,
  POD_NAME_ENV,
  POD_NAMESPACE_ENV,
} from '../sdk/internal.ts'
import { Controller } from './controller.ts'
import { EventRecorder } from './events.ts'
import { startHttpServer } from './http-server.ts'
import { createEventSink } from './kubernetes.ts'
import { createLockLeaderElector } from './leader-election.ts'
import { createJsonLogger, isLogLevel, LOG_LEVELS, type LogLevel } from './logger.ts'
import { createMetrics } from './metrics.ts'
import { checkEnvironment, DEFAULTS, parseNamespaces, parseSeconds } from './options.ts'

interface Flags {
  readonly namespaces: string[]
  readonly retention: number
  readonly grace: number
  readonly listen: string
  readonly logLevel: LogLevel
  readonly kubeconfig: string | undefined
  readonly leaderElectionNamespace: string | undefined
  readonly leaderElectionName: string
  readonly leaderElectionExpires: number
}

function usage<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text)
    } catch (error) {
      throw new InvalidArgumentError(error instanceof Error ? error.message : String(error))
    }
  }
}

function program(): Command {
  return new Command('kube-locks-controller')
    .description(
      'Marks expired kube-locks leases free, deletes leases that stayed free past the retention period ' +
        'and the tickets of waiters that are gone, records Events and serves Prometheus metrics. Run two ' +
        'or more replicas: one leader acts.',
    )
    .addOption(
      new Option('--namespaces <a,b>', 'namespaces whose locks to manage, comma-separated; empty means all')
        .env('KUBE_LOCKS_NAMESPACES')
        .default([], 'all namespaces')
        .argParser(usage(parseNamespaces)),
    )
    .addOption(
      new Option('--retention <seconds>', 'how long a free lease is kept before it is deleted')
        .env('KUBE_LOCKS_RETENTION')
        .default(DEFAULTS.retention)
        .argParser(usage((text) => parseSeconds('--retention', text))),
    )
    .addOption(
      new Option(
        '--grace <seconds>',
        "extra time past a lease duration before a held lock (or a waiter's ticket) counts as expired",
      )
        .env('KUBE_LOCKS_GRACE')
        .default(DEFAULTS.grace)
        .argParser(usage((text) => parseSeconds('--grace', text))),
    )
    .addOption(
      new Option('--listen <host:port>', 'address of /metrics, /healthz and /readyz')
        .env('KUBE_LOCKS_LISTEN')
        .default(DEFAULTS.listen),
    )
    .addOption(
      new Option('--log-level <level>', 'least severe level logged (JSON lines on stdout)')
        .env('KUBE_LOCKS_LOG_LEVEL')
        .choices(LOG_LEVELS)
        .default(DEFAULTS.logLevel),
    )
    .addOption(
      // Commander prints no default for an undefined value, so these spell theirs out.
      new Option(
        '--kubeconfig <path>',
        'kubeconfig file (default: like kubectl: $KUBECONFIG, else ~/.kube/config, else the in-cluster service account)',
      ),
    )
    .addOption(
      new Option(
        '--leader-election-namespace <namespace>',
        `namespace of the leader-election lease (default: $${POD_NAMESPACE_ENV}, else the kubeconfig's namespace, else default)`,
      ).env('KUBE_LOCKS_LEADER_ELECTION_NAMESPACE'),
    )
    .addOption(
      new Option(
        '--leader-election-name <name>',
        'name of the leader-election lock; replicas sharing it elect one leader',
      )
        .env('KUBE_LOCKS_LEADER_ELECTION_NAME')
        .default(DEFAULTS.leaderElectionName),
    )
    .addOption(
      new Option('--leader-election-expires <seconds>', 'seconds until a killed leader is replaced')
        .env('KUBE_LOCKS_LEADER_ELECTION_EXPIRES')
        .default(DEFAULTS.leaderElectionExpires)
        .argParser(usage((text) => parseSeconds('--leader-election-expires', text, 1))),
    )
    .addHelpText(
      'after',
      '\nThe leader releases its lock on SIGTERM, so a standby takes over at once; a killed leader is ' +
        'replaced once its lock expires.\nSee docs/operations.md for metrics, Events and alerts.',
    )
}

async function main(argv: readonly string[]): Promise<number> {
  const command = program()
  const flags = command.parse([...argv]).opts<Flags>()
  // A misspelt variable is a usage error like a misspelt flag; see checkEnvironment for the others.
  const accepted = command.options.flatMap((option) => (option.envVar === undefined ? [] : [option.envVar]))
  const environment = checkEnvironment(process.env, accepted)
  if (environment.errors.length > 0) command.error(environment.errors.map((e) => `error: ${e}`).join('\n'))
  const logLevel = isLogLevel(flags.logLevel) ? flags.logLevel : 'info'
  const logger = createJsonLogger(logLevel)
  for (const variable of environment.warnings) {
    logger.warn('ignoring an environment variable the controller does not read', { variable })
  }

  let cluster: Cluster
  try {
    cluster = loadCluster({ kubeconfig: flags.kubeconfig })
  } catch (error) {
    logger.error('cannot load the kubeconfig; pass --kubeconfig or run in a pod with a service account', {
      error,
    })
    return 1
  }

  const shutdown = new AbortController()
  let forced: ReturnType<typeof setTimeout> | undefined
  const onSignal = (name: string) => {
    if (shutdown.signal.aborted) {
      logger.warn('second signal: exiting at once', { signal: name })
      process.exit(1)
    }
    logger.info('shutting down', { signal: name })
    // A bounded shutdown: watches stop at once; writes in flight and the release have request timeouts.
    forced = setTimeout(() => {
      logger.error('shutdown took too long; exiting', { timeoutSeconds: DEFAULTS.shutdownTimeout })
      process.exit(1)
    }, DEFAULTS.shutdownTimeout * 1000)
    forced.unref()
    shutdown.abort()
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)

  const metrics = createMetrics()
  // One store, one pool of connections: the view of the leases, the Events and the leader election.
  const store = createClusterLeaseStore(cluster)
  const identity = process.env[POD_NAME_ENV] || undefined
  const locks = createLocks({
    store,
    namespace:
      flags.leaderElectionNamespace || process.env[POD_NAMESPACE_ENV] || cluster.namespace || undefined,
    service: 'kube-locks-controller',
    identity,
    logger,
  })
  const events = new EventRecorder({
    sink: createEventSink(store),
    metrics,
    logger,
    now: () => performance.now(),
    reportingInstance: identity ?? `kube-locks-controller-${process.pid}`,
  })
  const controller = new Controller(
    { namespaces: flags.namespaces, retention: flags.retention, grace: flags.grace },
    {
      source: store,
      store,
      events,
      metrics,
      logger,
      elector: createLockLeaderElector({
        locks,
        name: flags.leaderElectionName,
        expires: flags.leaderElectionExpires,
        logger,
      }),
    },
  )
  let http: Awaited<ReturnType<typeof startHttpServer>>
  try {
    http = await startHttpServer(flags.listen, metrics.registry, {
      notReadyBecause: () =>
        shutdown.signal.aborted ? 'shutting down' : controller.ready ? undefined : 'leases not listed yet',
    })
  } catch (error) {
    logger.error('cannot serve metrics and health checks; choose another --listen address', {
      listen: flags.listen,
      error,
    })
    await Promise.allSettled([locks.close(), store.close?.()])
    return 1
  }
  logger.info('serving /metrics, /healthz and /readyz', { address: http.address })
  logger.info('leader election', {
    lock: flags.leaderElectionName,
    namespace: locks.namespace,
    expiresSeconds: flags.leaderElectionExpires,
  })

  let code = 0
  try {
    await controller.start(shutdown.signal)
  } catch (error) {
    logger.error('controller failed', { error })
    code = 1
  }
  await events.stop()
  await Promise.allSettled([locks.close(), http.close()])
  await store.close?.()
  if (forced !== undefined) clearTimeout(forced)
  process.off('SIGTERM', onSignal)
  process.off('SIGINT', onSignal)
  logger.info('exiting', { code })
  return code
}

process.exitCode = await main(process.argv)
