/** `locks list --watch` against the real API server: it shows a lock passing from one holder to the next. */
import { describe, expect, it, onTestFinished } from 'vitest'
import { createLocks } from '../../sdk/internal.ts'
import { CliProcess } from './cli-helpers.ts'
import { adminKubeConfig, createNamespace } from './support.ts'

function rowsOf(stdout: string, holderPrefix: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('handover ') && line.includes(` ${holderPrefix}_`))
}

describe('locks list --watch', () => {
  it('prints the handover from one holder to the next as it happens', async () => {
    const namespace = await createNamespace('cli-watch')
    const client = (identity: string) => {
      const locks = createLocks({ kubeConfig: adminKubeConfig(), namespace, identity, service: 'reports' })
      onTestFinished(() => locks.close())
      return locks
    }
    const alpha = client('alpha')
    const bravo = client('bravo')

    const watch = new CliProcess(['list', '-n', namespace, '--watch'])
    // With nothing to list yet, the watch says so on stderr and waits.
    await expect
      .poll(() => watch.stderr, { timeout: 15_000 })
      .toBe(`No locks found in namespace \`${namespace}\`; watching for changes.\n`)

    const first = await alpha.acquire('handover', { expires: 30, timeout: 0 })
    await watch.waitForOutput('alpha to hold the lock', (stdout) => rowsOf(stdout, 'alpha').length > 0)

    const waiting = bravo.acquire('handover', { expires: 30, timeout: 20 })
    await first.release()
    const second = await waiting
    onTestFinished(() => second.release())
    await watch.waitForOutput('bravo to hold the lock', (stdout) => rowsOf(stdout, 'bravo').length > 0)

    const lines = watch.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^NAME +HOLDER +SERVICE +AGE +EXPIRES IN +HOLDERS +WAITING +TRANSITIONS$/)
    expect(lines.filter((line) => line.startsWith('NAME '))).toHaveLength(1)
    // bravo's ticket, if it had to take one, is never a row of its own.
    expect(lines.slice(1).every((line) => line.startsWith('handover '))).toBe(true)
    // alpha's rows come before bravo's, with the free state in between.
    const alphaAt = lines.findIndex((line) => line.includes(' alpha_'))
    const freeAt = lines.findIndex((line, i) => i > alphaAt && /^handover +<none> /.test(line))
    const bravoAt = lines.findIndex((line) => line.includes(' bravo_'))
    expect(alphaAt).toBeGreaterThan(0)
    expect(freeAt).toBeGreaterThan(alphaAt)
    expect(bravoAt).toBeGreaterThan(freeAt)

    watch.child.kill('SIGINT')
    const result = await watch.done
    expect(result.code).toBe(130)
  })
})
