import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { leaseNameFor } from '../sdk/internal.ts'
import { complete, Directive } from './completion.ts'
import { ExitCode } from './exit-codes.ts'
import { buildProgram, type CliContext, candidateLeaseNames, runCli } from './program.ts'

const dir = mkdtempSync(join(tmpdir(), 'locks-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function kubeconfig(server: string, name = 'config'): string {
  const path = join(dir, name)
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: { server: "${server}", insecure-skip-tls-verify: true }
users:
- name: u
  user: { token: t }
contexts:
- name: dev
  context: { cluster: c, user: u, namespace: shop }
current-context: dev
`,
  )
  return path
}

async function cli(
  args: string[],
  env: Record<string, string | undefined> = {},
  options: {
    signal?: AbortSignal
    onStdout?: (stdout: string) => void
    now?: () => number
    monotonic?: () => number
  } = {},
) {
  let stdout = ''
  let stderr = ''
  const ctx: CliContext = {
    stdout: (text) => {
      stdout += text
      options.onStdout?.(stdout)
    },
    stderr: (text) => {
      stderr += text
    },
    env: { KUBECONFIG: undefined, ...env },
    home: join(dir, 'no-home'),
    now: options.now ?? (() => Date.parse('2030-01-01T00:00:00Z')),
    monotonic: options.monotonic ?? (() => performance.now()),
    signal: options.signal ?? new AbortController().signal,
    signals: process,
  }
  const code = await runCli(args, ctx)
  return { code, stdout, stderr }
}

describe('usage errors exit 2 and say what is wrong', () => {
  it.each([
    [['list', '--bogus'], "unknown option '--bogus'"],
    [['lst'], "unknown command 'lst'"],
    [['run', 'x'], 'no command given: put it after `--`'],
    [['run', 'x', '--timeout', 'soon', '--', 'true'], '--timeout: expected a number of seconds >= 0'],
    [['run', 'x', '--expires', '0', '--', 'true'], '--expires: expected a number of seconds > 0'],
    [['list', '-o', 'xml'], "argument 'xml' is invalid"],
    [['gc', '-o', 'wide'], "argument 'wide' is invalid"],
    [['list', '--chunk-size', '-3'], '--chunk-size'],
    [['gc'], 'add --dry-run'],
    [['completion', 'fish'], 'unknown shell `fish`'],
    [['get'], "missing required argument 'name'"],
    [['list', '--namespce', 'x'], "unknown option '--namespce'\n(Did you mean --namespace?)"],
    [['run', '--expire', '5', '--', 'true'], "unknown option '--expire'\n(Did you mean --expires?)"],
    [['run', 'x', '--expire', '5', '--', 'true'], "unknown option '--expire'"],
    [['release', 'x', '--forse'], "unknown option '--forse'\n(Did you mean --force?)"],
    [
      ['run', 'x', '--expires', '5', '--kill-after', '10', '--', 'true'],
      'error: --kill-after 10 s plus the safety margin 0.5 s must be less than --expires 5 s, so that the command is killed before anyone else can take the lock: pass --kill-after below 4.5, or --expires above 11.111\n',
    ],
    [['run', 'x', '--kill-after', '-1', '--', 'true'], '--kill-after: expected a number of seconds >= 0'],
    [
      ['run', 'x', '--grace', '1', '--kill-after', '1', '--', 'true'],
      '--grace is the old name of --kill-after',
    ],
    [['release', 'x', '--timeout', 'soon'], '--timeout: expected a number of seconds >= 0'],
    [['run', 'x', '--limit', '0', '--', 'true'], '--limit: expected a whole number from 1 to 1000, got `0`'],
    [
      ['run', 'x', '--limit', '2.5', '--', 'true'],
      '--limit: expected a whole number from 1 to 1000, got `2.5`',
    ],
    [['run', 'x', '--limit', 'three', '--', 'true'], '--limit: expected a whole number from 1 to 1000'],
    [['run', 'x', '--limit', '1001', '--', 'true'], '--limit: expected a whole number from 1 to 1000'],
    [['run', 'x', '--limit', '-1', '--', 'true'], '--limit: expected a whole number from 1 to 1000'],
    [
      ['run', 'x', '--limit', '3', '--shared', '--', 'true'],
      'error: --limit and --shared cannot be given together: --limit N holds one of at most N places of a semaphore, --shared a shared lock that any number may hold at once; choose one\n',
    ],
  ])('%j', async (args, message) => {
    const result = await cli(args)
    expect(result.code).toBe(ExitCode.usage)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain(message)
  })
})

describe('run --grace', () => {
  it('still works as the deprecated name of --kill-after, and says so', async () => {
    const result = await cli(['run', 'x', '--grace', '1', '--', 'true'])
    // It gets as far as connecting: no cluster is configured here.
    expect(result.code).toBe(ExitCode.failure)
    expect(result.stderr.split('\n')[0]).toBe(
      'warning: --grace is deprecated and will be removed: use --kill-after, which means the same',
    )
    expect(result.stderr).toContain('error: no cluster configured')
  })

  it('is hidden from help and completion', async () => {
    const help = await cli(['run', '--help'])
    expect(help.stdout).toContain('--kill-after <seconds>')
    expect(help.stdout).not.toContain('--grace')
    const completion = await cli(['completion', 'bash'])
    const runLine = completion.stdout.split('\n').find((line) => line.includes('run) flags='))
    expect(runLine).toContain('--kill-after')
    expect(runLine).not.toContain('--grace')
  })
})

describe('help', () => {
  it.each(['list', 'get', 'release', 'run', 'gc', 'completion'])(
    'of %s shows examples on stdout',
    async (command) => {
      const result = await cli([command, '--help'])
      expect(result.code).toBe(ExitCode.ok)
      expect(result.stdout).toContain('Examples:')
      expect(result.stderr).toBe('')
    },
  )

  it('of run documents the exit codes and environment', async () => {
    const { stdout } = await cli(['run', '--help'])
    for (const text of [
      'KUBE_LOCKS_FENCING_TOKEN',
      'KUBE_LOCKS_NAME',
      `${ExitCode.notAcquired}`,
      `${ExitCode.lost}`,
      `${ExitCode.modeConflict} if the name is in use with another --limit`,
      '--limit <n>',
      '--shared',
    ]) {
      expect(stdout).toContain(text)
    }
  })
})

describe('completion', () => {
  it.each(['bash', 'zsh'])('for %s covers every command and flag', async (shell) => {
    const { code, stdout } = await cli(['completion', shell])
    expect(code).toBe(ExitCode.ok)
    expect(stdout).toContain('complete -F _locks_complete locks kubectl-locks')
    for (const word of [
      'list',
      'ls',
      'get',
      'release',
      'run',
      'gc',
      '--all-namespaces',
      '--dry-run',
      '--renew',
      '--limit',
      '--shared',
      '--holder',
    ]) {
      expect(stdout).toContain(word)
    }
  })
})

describe('the bash completion script', () => {
  it('completes commands, flags and output formats when bash runs it', async () => {
    const { stdout: script } = await cli(['completion', 'bash'])
    const complete = (...words: string[]) => {
      const setup = `COMP_WORDS=(${words.map((word) => `'${word}'`).join(' ')}); COMP_CWORD=${words.length - 1}`
      const result = spawnSync(
        'bash',
        ['-c', `${script}\n${setup}; _locks_complete; echo "\${COMPREPLY[*]}"`],
        {
          encoding: 'utf8',
        },
      )
      expect(result.stderr).toBe('')
      return result.stdout.trim()
    }
    expect(complete('locks', 'r')).toBe('release run')
    expect(complete('locks', 'run', '--re')).toBe('--request-timeout --renew')
    expect(complete('locks', 'list', '-o', 'y')).toBe('yaml')
    expect(complete('locks', 'completion', '')).toBe('bash zsh')
    expect(complete('locks', 'run', 'x', '--li')).toBe('--limit')
    expect(complete('locks', 'run', 'x', '--sh')).toBe('--shared')
    expect(complete('locks', 'release', 'x', '--ho')).toBe('--holder')
  })
})

describe('completion for kubectl (cobra protocol)', () => {
  const sources = {
    lockNames: async () => ['partner-api'],
    namespaces: async () => [],
    contexts: async () => [],
  }
  const program = () =>
    buildProgram(
      {
        stdout: () => {},
        stderr: () => {},
        env: {},
        home: undefined,
        now: () => 0,
        signal: new AbortController().signal,
        signals: process,
      },
      () => {},
    )

  it('knows run --limit and --shared, and that --limit takes a value', async () => {
    expect((await complete(program(), ['run', 'partner-api', '--s'], sources)).candidates).toEqual([
      '--shared',
      '--service',
    ])
    expect(await complete(program(), ['run', 'partner-api', '--limit', ''], sources)).toEqual({
      candidates: [],
      directive: Directive.noFileComp,
    })
    // After a value of --limit, the lock name is still to come.
    expect((await complete(program(), ['run', '--limit', '3', ''], sources)).candidates).toEqual([
      'partner-api',
    ])
  })
})

describe('runtime failures exit 1 with one line', () => {
  it('without any cluster configured', async () => {
    const result = await cli(['list'])
    expect(result.code).toBe(ExitCode.failure)
    expect(result.stderr).toBe(
      'error: no cluster configured: pass --kubeconfig FILE, set KUBECONFIG, or create ~/.kube/config (for example with `kubectl config set-cluster`)\n',
    )
  })

  it('with a --kubeconfig that does not exist', async () => {
    const result = await cli(['get', 'x', '--kubeconfig', join(dir, 'missing')])
    expect(result.code).toBe(ExitCode.failure)
    expect(result.stderr).toMatch(
      /^error: the kubeconfig file .*missing does not exist: check the --kubeconfig path\n$/,
    )
  })

  it('with a namespace that cannot exist, as a usage error', async () => {
    const result = await cli(['list', '-n', 'Shop_EU'], { KUBECONFIG: kubeconfig('http://127.0.0.1:1') })
    expect(result.code).toBe(ExitCode.usage)
    expect(result.stderr).toBe(
      "error: `Shop_EU` is not a namespace name: lowercase letters, digits and '-', at most 63 characters\n",
    )
  })

  it('with an unknown --context', async () => {
    const result = await cli(['list', '--context', 'prod'], { KUBECONFIG: kubeconfig('http://127.0.0.1:1') })
    expect(result.code).toBe(ExitCode.failure)
    expect(result.stderr).toBe('error: the kubeconfig has no context `prod`: choose one of dev\n')
  })

  it('when the server is unreachable', async () => {
    const result = await cli(['list'], { KUBECONFIG: kubeconfig('http://127.0.0.1:1') })
    expect(result.code).toBe(ExitCode.failure)
    expect(result.stderr).toBe(
      'error: cannot reach the Kubernetes API server at http://127.0.0.1:1 (ECONNREFUSED): check that the cluster is running and that --kubeconfig/--context point at it\n',
    )
  })

  describe('against a server that answers', () => {
    let server: Server
    let url = ''
    const requests: string[] = []
    beforeAll(async () => {
      server = createServer((req, res) => {
        requests.push(req.url ?? '')
        if (req.url?.includes('/namespaces/slow/')) return // never answers
        res.writeHead(req.url?.includes('/namespaces/shop/') ? 403 : 500, {
          'content-type': 'application/json',
        })
        res.end(
          JSON.stringify({
            kind: 'Status',
            reason: 'Forbidden',
            message:
              'leases.coordination.k8s.io is forbidden: User "system:serviceaccount:shop:viewer" cannot list resource "leases"',
          }),
        )
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const address = server.address()
      url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
    })
    afterAll(async () => {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    })

    it('reports forbidden with who and how to check', async () => {
      const result = await cli(['list'], { KUBECONFIG: kubeconfig(url, 'answering') })
      expect(result.code).toBe(ExitCode.failure)
      expect(result.stderr).toBe(
        'error: forbidden: cannot list leases.coordination.k8s.io in namespace `shop` as `system:serviceaccount:shop:viewer`: ask for a Role (or ClusterRole for -A) that grants `list` on leases in group coordination.k8s.io; check with `kubectl auth can-i list leases.coordination.k8s.io -n shop`\n',
      )
      // Locks without tickets nor holder records (they go apart, for the WAITING and HOLDERS columns).
      expect(requests).toContain(
        '/apis/coordination.k8s.io/v1/namespaces/shop/leases?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dkube-locks%2C%21kube-locks.io%2Fqueue-for%2C%21kube-locks.io%2Fholder-of&limit=500',
      )
    })

    it('gives up after --request-timeout', async () => {
      const result = await cli(['get', 'x', '-n', 'slow', '--request-timeout', '0.2'], {
        KUBECONFIG: kubeconfig(url, 'answering'),
      })
      expect(result.code).toBe(ExitCode.failure)
      expect(result.stderr).toBe(
        `error: the Kubernetes API server at ${url} did not answer within 0.2 s: check that it is up and reachable, or raise --request-timeout\n`,
      )
    })
  })
})

describe('candidateLeaseNames', () => {
  it('tries the lock name first, then the same text as a lease name', () => {
    expect(candidateLeaseNames('nightly')).toEqual(['nightly'])
    expect(candidateLeaseNames('Orders/EU')).toEqual([leaseNameFor('Orders/EU')])
    const hashed = leaseNameFor('Orders/EU')
    expect(candidateLeaseNames(hashed)).toEqual([leaseNameFor(hashed), hashed])
  })

  it('takes kubectl resource names as lease names', () => {
    expect(candidateLeaseNames('lease.coordination.k8s.io/a--b')).toEqual(['a--b'])
    expect(candidateLeaseNames('leases/a')).toEqual(['a'])
  })
})

describe('list --watch', () => {
  function lease(name: string, resourceVersion: string, holder: string | undefined) {
    return {
      metadata: {
        name,
        namespace: 'shop',
        uid: `uid-${name}`,
        resourceVersion,
        creationTimestamp: '2029-12-31T23:59:00Z',
        labels: { 'app.kubernetes.io/managed-by': 'kube-locks' },
      },
      spec: { holderIdentity: holder, leaseDurationSeconds: 20, renewTime: '2029-12-31T23:59:59.000000Z' },
    }
  }

  it('lists again after 410 Gone and prints only what changed, then follows the new watch', async () => {
    const requests: string[] = []
    let lists = 0
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x')
      res.writeHead(200, { 'content-type': 'application/json' })
      if (!url.searchParams.get('labelSelector')?.includes('!kube-locks.io/queue-for')) {
        // The tickets' list and watch: none, and a quiet watch.
        if (url.searchParams.get('watch')) res.flushHeaders()
        else res.end(JSON.stringify({ items: [], metadata: { resourceVersion: '10' } }))
        return
      }
      requests.push(
        `${url.searchParams.get('watch') ? 'watch' : 'list'} ${url.searchParams.get('resourceVersion') ?? ''}`,
      )
      if (!url.searchParams.get('watch')) {
        lists += 1
        const items =
          lists === 1
            ? [lease('a', '5', 'x_1_a'), lease('b', '6', undefined)]
            : [lease('a', '12', 'y_1_a'), lease('b', '6', undefined), lease('c', '11', undefined)]
        res.end(JSON.stringify({ items, metadata: { resourceVersion: lists === 1 ? '10' : '13' } }))
        return
      }
      if (url.searchParams.get('resourceVersion') === '10') {
        res.end(
          `${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } })}\n`,
        )
        return
      }
      // Stays open after one change, like a quiet watch.
      res.write(`${JSON.stringify({ type: 'MODIFIED', object: lease('a', '14', 'z_1_a') })}\n`)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const address = server.address()
      const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
      const stop = new AbortController()
      const result = await cli(
        ['list', '-w'],
        { KUBECONFIG: kubeconfig(url, 'watching') },
        {
          signal: stop.signal,
          onStdout: (stdout) => {
            if (stdout.includes('z_1_a')) stop.abort('SIGINT')
          },
        },
      )
      expect(result.code).toBe(130)
      expect(result.stderr).toBe('')
      expect(result.stdout.split('\n').map((line) => line.split(/ {3,}/).slice(0, 2).join(' '))).toEqual([
        'NAME HOLDER',
        'a x_1_a',
        'b <none>',
        // after 410: a changed and c is new; b is unchanged and not repeated
        'a y_1_a',
        'c <none>',
        'a z_1_a',
        '',
      ])
      expect(requests).toEqual(['list ', 'watch 10', 'list ', 'watch 13'])
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

describe('release', () => {
  it('writes under the uid and resourceVersion it read, and reports a lost race without changing anything', async () => {
    const puts: { metadata: { uid?: string; resourceVersion?: string }; spec: Record<string, unknown> }[] = []
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk) => {
        body += chunk
      })
      req.on('end', () => {
        res.setHeader('content-type', 'application/json')
        if (req.method === 'GET') {
          res.end(
            JSON.stringify({
              metadata: {
                name: 'nightly',
                namespace: 'shop',
                uid: 'u-1',
                resourceVersion: '5',
                labels: { 'app.kubernetes.io/managed-by': 'kube-locks' },
                annotations: { 'kube-locks.io/name': 'nightly', 'kube-locks.io/pod': 'p-1' },
              },
              spec: {
                holderIdentity: 'p-1_1_x',
                leaseDurationSeconds: 20,
                renewTime: '2029-12-31T23:59:59.000000Z',
              },
            }),
          )
          return
        }
        puts.push(JSON.parse(body))
        res.writeHead(409)
        res.end(
          JSON.stringify({
            kind: 'Status',
            code: 409,
            reason: 'Conflict',
            message: 'the object has been modified',
          }),
        )
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const address = server.address()
      const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
      const result = await cli(['release', 'nightly', '--force'], {
        KUBECONFIG: kubeconfig(url, 'releasing'),
      })
      expect(result.code).toBe(ExitCode.failure)
      expect(result.stdout).toBe('')
      expect(result.stderr).toBe(
        'error: lock `nightly` in namespace `shop` changed while it was being released (renewed, taken over, released or deleted by someone else); nothing was changed: run `locks get nightly` to see its state, then try again\n',
      )
      expect(puts).toHaveLength(1)
      const [put] = puts
      expect(put?.metadata).toMatchObject({ uid: 'u-1', resourceVersion: '5' })
      expect(put?.metadata).toHaveProperty('annotations', { 'kube-locks.io/name': 'nightly' })
      expect(put?.spec).toEqual({ leaseDurationSeconds: 20, renewTime: '2030-01-01T00:00:00.000000Z' })
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

describe('release judges expiry on its own monotonic clock', () => {
  // The operator's wall clock runs 40 s ahead of the holder's: by the times written in the lease, the
  // lock looks 20 s past its expiry, yet its holder renewed it just now and is valid for 20 s more.
  const wallNow = Date.parse('2030-01-01T00:00:00Z')
  const renewTime = '2029-12-31T23:59:20.000000Z'

  function heldLease(resourceVersion: string, holder: string | undefined) {
    return {
      metadata: {
        name: 'nightly',
        namespace: 'shop',
        uid: 'u-1',
        resourceVersion,
        labels: { 'app.kubernetes.io/managed-by': 'kube-locks' },
        annotations: { 'kube-locks.io/name': 'nightly' },
      },
      spec: { holderIdentity: holder, leaseDurationSeconds: 20, renewTime },
    }
  }

  /** A server that answers GET with `lease` and records every other request. */
  async function serve(lease: object, run: (url: string) => Promise<void>) {
    const writes: string[] = []
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json')
      if (req.method !== 'GET') {
        writes.push(`${req.method} ${req.url}`)
        res.writeHead(500)
        res.end(JSON.stringify({ kind: 'Status', code: 500, message: 'must not write' }))
        return
      }
      res.end(JSON.stringify(lease))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const address = server.address()
      await run(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
    return writes
  }

  it('with --timeout 0 refuses at once, says how long the lease must be seen unchanged, and writes nothing', async () => {
    const writes = await serve(heldLease('5', 'p-1_1_x'), async (url) => {
      const result = await cli(
        ['release', 'nightly', '--timeout', '0'],
        { KUBECONFIG: kubeconfig(url, 'skewed') },
        {
          now: () => wallNow,
        },
      )
      expect(result.code).toBe(ExitCode.failure)
      expect(result.stdout).toBe('')
      expect(result.stderr).toBe(
        'error: lock `nightly` in namespace `shop` is still held by `p-1_1_x` after --timeout 0 s; nothing was changed: pass --force to release it anyway (a holder that still runs keeps running beside the next holder), --holder p-1_1_x to release it only while that holder has it, or --timeout 22 or more to wait until it counts as expired (22 s unchanged)\n',
      )
    })
    expect(writes).toEqual([])
  })

  it('never writes a lease without the managed-by label, even with --force', async () => {
    const foreign = heldLease('5', 'kube-scheduler-1')
    const lease = { ...foreign, metadata: { ...foreign.metadata, name: 'kube-scheduler', labels: {} } }
    const writes = await serve(lease, async (url) => {
      for (const flags of [['--force'], ['--holder', 'kube-scheduler-1'], []]) {
        const result = await cli(['release', 'kube-scheduler', ...flags], {
          KUBECONFIG: kubeconfig(url, 'foreign'),
        })
        expect(result.code).toBe(ExitCode.failure)
        expect(result.stderr).toBe(
          'error: lease `shop/kube-scheduler` is not a kube-locks lock (it lacks the label app.kubernetes.io/managed-by=kube-locks); locks leaves it alone: use kubectl for it\n',
        )
      }
    })
    expect(writes).toEqual([])
  })

  it('does not free a valid holder’s lock whose renewTime looks long past; the holder’s own release ends the wait', async () => {
    const requests: string[] = []
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x')
      requests.push(`${req.method} ${url.searchParams.get('watch') ? 'watch' : url.pathname}`)
      res.setHeader('content-type', 'application/json')
      if (req.method === 'GET' && url.searchParams.get('watch')) {
        // The holder finishes and releases its lock while `release` waits.
        res.end(`${JSON.stringify({ type: 'MODIFIED', object: heldLease('6', undefined) })}\n`)
        return
      }
      if (req.method === 'GET') {
        res.end(JSON.stringify(heldLease('5', 'p-1_1_x')))
        return
      }
      res.writeHead(500)
      res.end(JSON.stringify({ kind: 'Status', code: 500, message: 'release must not write' }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const address = server.address()
      const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
      const result = await cli(
        ['release', 'nightly'],
        { KUBECONFIG: kubeconfig(url, 'skewed') },
        {
          now: () => wallNow,
        },
      )
      expect(requests.filter((request) => !request.startsWith('GET'))).toEqual([])
      expect(result.stderr).toContain(
        'is held by `p-1_1_x`: waiting until this machine has seen its lease unchanged for 22 s',
      )
      expect(result.stdout).toBe(
        'lock "nightly" in namespace `shop` is free: its holder released it while release waited; nothing was changed\n',
      )
      expect(result.code).toBe(ExitCode.ok)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
