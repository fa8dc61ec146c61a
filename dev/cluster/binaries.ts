import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runToCompletion } from '../child-process.ts'
import { isAlive } from './process.ts'
import { cacheKey, type Release, VERSIONS } from './versions.ts'

/** Paths of the executables the test control plane and the install tests run. */
export interface Binaries {
  readonly kubeApiserver: string
  readonly etcd: string
  readonly kubectl: string
  readonly helm: string
}

type Log = (line: string) => void

const GO_MODULES = join(dirname(fileURLToPath(import.meta.url)), 'go')

/**
 * Finds the binaries or builds them once into a cache outside the repository.
 *
 * Explicit paths win, following setup-envtest's convention: `TEST_ASSET_KUBE_APISERVER`,
 * `TEST_ASSET_ETCD`, `TEST_ASSET_KUBECTL`, `TEST_ASSET_HELM`, or a `KUBEBUILDER_ASSETS`
 * folder holding them. Whatever is still missing is built with the Go toolchain from the
 * pinned modules in `dev/cluster/go/` into `$KUBE_LOCKS_CACHE_DIR` (default
 * `~/.cache/kube-locks`), keyed by version, so a changed version never reuses old binaries.
 * The release defaults to the one `KUBE_LOCKS_K8S_VERSION` selects (see versions.ts).
 */
export async function ensureBinaries(log: Log = () => {}, release: Release = VERSIONS): Promise<Binaries> {
  const env = process.env
  const assets = env.KUBEBUILDER_ASSETS
  const fromAssets = (name: string) =>
    assets && existsSync(join(assets, name)) ? join(assets, name) : undefined
  const cache = join(cacheRoot(), cacheKey(release), 'bin')
  const cached = (name: string) => join(cache, name)

  const found = {
    kubeApiserver: env.TEST_ASSET_KUBE_APISERVER ?? fromAssets('kube-apiserver') ?? cached('kube-apiserver'),
    etcd: env.TEST_ASSET_ETCD ?? fromAssets('etcd') ?? cached('etcd'),
    kubectl: env.TEST_ASSET_KUBECTL ?? fromAssets('kubectl') ?? cached('kubectl'),
    helm: env.TEST_ASSET_HELM ?? fromAssets('helm') ?? cached('helm'),
  }
  for (const [key, path] of Object.entries(found)) {
    if (path !== cached(key === 'kubeApiserver' ? 'kube-apiserver' : key) && !existsSync(path)) {
      throw new Error(
        `${path} does not exist: fix the TEST_ASSET_* or KUBEBUILDER_ASSETS variable that names it`,
      )
    }
  }

  const missing = (path: string) => path.startsWith(cache) && !existsSync(path)
  const all = [found.kubeApiserver, found.etcd, found.kubectl, found.helm]
  if (all.some(missing)) {
    await mkdir(cache, { recursive: true })
    // Test runs started side by side would each build the same binaries: one builds, the others wait.
    await withBuildLock(cache, log, async () => {
      if (!all.some(missing)) return
      log(`building the test control plane into ${cache} (first run only)`)
      const kubernetes = [found.kubeApiserver, found.kubectl].filter(missing)
      if (kubernetes.length > 0) await buildKubernetes(release, cache, kubernetes, log)
      if (missing(found.etcd)) await buildEtcd(release, cache, log)
      if (missing(found.helm)) await buildHelm(release, cache, log)
    })
  }
  return found
}

/**
 * Runs `build` holding `<cache>/.lock`, a folder (made atomically) naming its owner's pid.
 * A lock whose owner died is taken over.
 */
async function withBuildLock(cache: string, log: Log, build: () => Promise<void>): Promise<void> {
  const lock = join(cache, '.lock')
  let waiting = false
  for (;;) {
    try {
      await mkdir(lock)
      await writeFile(join(lock, 'pid'), String(process.pid))
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const owner = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => ''))
      if (owner && !isAlive(owner)) {
        await rm(lock, { recursive: true, force: true })
        continue
      }
      if (!waiting) log(`waiting for the build in process ${owner || '(starting)'} to finish`)
      waiting = true
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
  }
  try {
    await build()
  } finally {
    await rm(lock, { recursive: true, force: true })
  }
}

function cacheRoot(): string {
  const env = process.env
  if (env.KUBE_LOCKS_CACHE_DIR) return env.KUBE_LOCKS_CACHE_DIR
  return join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kube-locks')
}

async function buildKubernetes(
  release: Release,
  cache: string,
  targets: readonly string[],
  log: Log,
): Promise<void> {
  const version = release.kubernetes
  const minor = version.split('.')[1] ?? ''
  // The server must report its real version: Helm checks the chart's kubeVersion against it.
  const pkg = 'k8s.io/component-base/version'
  const ldflags = `-X ${pkg}.gitVersion=${version} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean`
  const packages = targets.map((path) => `k8s.io/kubernetes/cmd/${path.slice(cache.length + 1)}`)
  await goBuild({
    what: `Kubernetes ${version} (${packages.map((p) => p.split('/').pop()).join(', ')}), about 8 minutes on 2 cores`,
    dir: join(GO_MODULES, release.modules.kubernetes),
    packages,
    args: ['-ldflags', ldflags],
    cache,
    log,
  })
}

async function buildEtcd(release: Release, cache: string, log: Log): Promise<void> {
  await goBuild({
    what: `etcd ${release.etcd}, about 2 minutes`,
    dir: join(GO_MODULES, release.modules.etcd),
    packages: ['go.etcd.io/etcd/server/v3'],
    output: 'etcd',
    cache,
    log,
  })
}

async function buildHelm(release: Release, cache: string, log: Log): Promise<void> {
  // Helm's own release build stamps its version and the Kubernetes version it assumes when no
  // cluster is reachable (`helm template`, `helm lint`); without them it reports v1.20.
  const goMod = JSON.parse(
    await run('go', ['mod', 'download', '-json', `helm.sh/helm/v3@${release.helm}`], {
      cwd: GO_MODULES,
      env: goEnv(),
    }),
  ) as { GoMod: string }
  const clientGo = /k8s\.io\/client-go v0\.(\d+)\./.exec(await readFile(goMod.GoMod, 'utf8'))
  if (!clientGo) throw new Error(`cannot tell which Kubernetes version Helm ${release.helm} is built against`)
  const minor = clientGo[1]
  const flags = [
    `-X helm.sh/helm/v3/internal/version.version=${release.helm}`,
    `-X helm.sh/helm/v3/internal/version.gitTreeState=clean`,
    ...['pkg/lint/rules', 'pkg/chartutil'].flatMap((pkg) => [
      `-X helm.sh/helm/v3/${pkg}.k8sVersionMajor=1`,
      `-X helm.sh/helm/v3/${pkg}.k8sVersionMinor=${minor}`,
    ]),
  ]
  // Helm's module has no replace directives, so `go install` builds it without a wrapper module.
  await goBuild({
    what: `Helm ${release.helm}, about 3 minutes`,
    dir: GO_MODULES,
    packages: [`helm.sh/helm/v3/cmd/helm@${release.helm}`],
    args: ['-ldflags', flags.join(' ')],
    output: 'helm',
    cache,
    log,
  })
}

interface GoBuild {
  readonly what: string
  /** Folder of the module that pins the versions (ignored for `pkg@version`). */
  readonly dir: string
  /** Packages to build, or one `pkg@version` to install. */
  readonly packages: readonly string[]
  readonly args?: readonly string[]
  /** The binary's name when it differs from the package's last element. */
  readonly output?: string
  readonly cache: string
  readonly log: Log
}

/**
 * Builds into a staging folder and renames into the cache, so that an interrupted build
 * never leaves a half-written binary where the next run would take it as built.
 */
async function goBuild(build: GoBuild): Promise<void> {
  const { dir, packages, cache, log } = build
  const staging = await mkdtemp(join(cache, '.build-'))
  try {
    log(`building ${build.what}`)
    const install = packages.some((p) => p.includes('@'))
    const total = install
      ? undefined
      : (await run('go', ['list', '-deps', ...packages], { cwd: dir, env: goEnv() })).split('\n').length
    const started = Date.now()
    let compiled = 0
    const ticker = setInterval(() => {
      const seconds = Math.round((Date.now() - started) / 1000)
      log(`  ${total ? `${Math.min(compiled, total)}/${total}` : compiled} packages compiled, ${seconds}s`)
    }, 15_000)
    const out = build.output ? join(staging, build.output) : `${staging}/`
    const command = install ? ['install', '-v'] : ['build', '-v', '-o', out]
    try {
      await run('go', [...command, ...(build.args ?? []), ...packages], {
        cwd: dir,
        env: install ? { ...goEnv(), GOBIN: staging } : goEnv(),
        onStderrLine: () => {
          compiled++
        },
      })
    } finally {
      clearInterval(ticker)
    }
    const names = build.output ? [build.output] : packages.map((p) => p.split('/').pop() ?? p)
    for (const name of names) await rename(join(staging, name), join(cache, name))
    log(`  built ${names.join(', ')} in ${Math.round((Date.now() - started) / 1000)}s`)
  } finally {
    await rm(staging, { recursive: true, force: true })
  }
}

function goEnv(): NodeJS.ProcessEnv {
  return { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' }
}

interface RunOptions {
  readonly cwd: string
  readonly env: NodeJS.ProcessEnv
  readonly onStderrLine?: (line: string) => void
}

/** Runs a command to completion, returning its stdout; on failure the error carries its stderr's tail. */
async function run(command: string, args: readonly string[], options: RunOptions): Promise<string> {
  try {
    return await runToCompletion(command, args, options)
  } catch (error) {
    const cause = (error as Error).cause as NodeJS.ErrnoException | undefined
    if (cause?.code !== 'ENOENT') throw error
    throw new Error(
      `cannot run ${command}: '${command}' is not installed. The test control plane is built with Go >= 1.26 (or point KUBEBUILDER_ASSETS at prebuilt binaries)`,
      { cause },
    )
  }
}
