import { execFile } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

/** A certificate and its private key, PEM-encoded, and where they are on disk. */
export interface KeyPair {
  readonly certFile: string
  readonly keyFile: string
  readonly cert: string
  readonly key: string
}

/**
 * A throw-away certificate authority for one control plane. Node can make keys but not
 * X.509 certificates, so certificates come from the openssl command.
 */
export class TestPki {
  readonly dir: string
  readonly ca: KeyPair

  private constructor(dir: string, ca: KeyPair) {
    this.dir = dir
    this.ca = ca
  }

  static async create(dir: string): Promise<TestPki> {
    const certFile = join(dir, 'ca.crt')
    const keyFile = join(dir, 'ca.key')
    await writeFile(keyFile, ecKey(), { mode: 0o600 })
    await openssl([
      'req',
      '-x509',
      '-new',
      '-key',
      keyFile,
      '-out',
      certFile,
      '-days',
      '7',
      '-subj',
      '/CN=kube-locks-test-ca',
    ])
    return new TestPki(dir, {
      certFile,
      keyFile,
      cert: await readFile(certFile, 'utf8'),
      key: await readFile(keyFile, 'utf8'),
    })
  }

  /** A serving certificate for the API server on loopback. */
  serving(name: string): Promise<KeyPair> {
    return this.issue(name, '/CN=kube-apiserver', [
      'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost',
      'extendedKeyUsage=serverAuth',
    ])
  }

  /** A client certificate: the API server takes the CN as the user name and each O as a group. */
  client(name: string, user: string, groups: readonly string[] = []): Promise<KeyPair> {
    const subject = `/CN=${escapeRdn(user)}${groups.map((g) => `/O=${escapeRdn(g)}`).join('')}`
    return this.issue(name, subject, ['extendedKeyUsage=clientAuth'])
  }

  private async issue(name: string, subject: string, extensions: readonly string[]): Promise<KeyPair> {
    const keyFile = join(this.dir, `${name}.key`)
    const csrFile = join(this.dir, `${name}.csr`)
    const certFile = join(this.dir, `${name}.crt`)
    await writeFile(keyFile, ecKey(), { mode: 0o600 })
    // openssl 3.0's `x509` has no -addext: the extensions ride in the request and are copied over.
    const addext = extensions.flatMap((e) => ['-addext', e])
    await openssl(['req', '-new', '-key', keyFile, '-out', csrFile, '-subj', subject, ...addext])
    await openssl([
      'x509',
      '-req',
      '-in',
      csrFile,
      '-CA',
      this.ca.certFile,
      '-CAkey',
      this.ca.keyFile,
      '-CAcreateserial',
      '-copy_extensions',
      'copy',
      '-out',
      certFile,
      '-days',
      '7',
    ])
    return { certFile, keyFile, cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') }
  }
}

/** An RSA key pair for signing service-account tokens. */
export function serviceAccountKeys(): { publicKey: string; privateKey: string } {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  })
}

function ecKey(): string {
  return generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  }).privateKey
}

function escapeRdn(value: string): string {
  return value.replace(/[/\\+=,]/g, (c) => `\\${c}`)
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args)
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr ?? ''
    throw new Error(`openssl ${args[0]} failed: ${detail.trim() || String(error)}`, { cause: error })
  }
}
