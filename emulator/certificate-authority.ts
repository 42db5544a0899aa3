/**
 * The emulator's bank PKI for key certificates, driven through the openssl CLI as tls.ts does
 * (node:crypto cannot issue X.509): a root CA (the trust anchor partners hold), an issuing CA
 * under it, and certificates issued by the issuing CA for a public key whose private half the CA
 * never sees (`openssl x509 -new -force_pubkey`, as a CA signs a CSR for an HSM-held key). It can
 * also hand out the broken certificates publication must refuse: expired, for another key, by a CA
 * outside the anchors, without the needed key usage.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertificateAuthority {
  /** The root's certificate: the trust anchor (JWKS_CERT_TRUST_ANCHORS). */
  readonly anchorPem: string;
  /** The issuing CA's certificate (an intermediate: it goes into x5c after the leaf). */
  readonly issuingPem: string;
  readonly dir: string;
}

export type KeyUsageSpec = 'digitalSignature' | 'keyEncipherment' | 'keyAgreement' | 'none';

export interface IssueOptions {
  readonly publicKeyPem: string;
  readonly commonName: string;
  /** Default digitalSignature. 'none' leaves the keyUsage extension out. */
  readonly keyUsage?: KeyUsageSpec;
  /** Negative: already expired. Default 397. */
  readonly days?: number;
  /** Signed by a throw-away CA outside the anchors: its chain does not verify. */
  readonly rogue?: boolean;
}

/** Creates (again) a root and an issuing CA in `dir` (0700; private keys 0600). */
export async function createCertificateAuthority(dir: string): Promise<CertificateAuthority> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'openssl.cnf'), '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n');
  await createCa(dir, 'root', '/O=Example Bank/CN=Example Bank Root CA', undefined);
  await createCa(dir, 'issuing', '/O=Example Bank/CN=Example Bank Signing CA', 'root');
  const [anchorPem, issuingPem] = await Promise.all([readFile(join(dir, 'root.pem'), 'utf8'), readFile(join(dir, 'issuing.pem'), 'utf8')]);
  return { anchorPem, issuingPem, dir };
}

/** A certificate (PEM) for `publicKeyPem`, issued by the issuing CA (or a rogue one). */
export async function issueCertificate(ca: CertificateAuthority, options: IssueOptions): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/.test(options.commonName)) throw new Error(`unsupported common name: ${JSON.stringify(options.commonName)}`);
  const work = await mkdtemp(join(tmpdir(), 'emulator-cert-'));
  try {
    let issuer = join(ca.dir, 'issuing');
    if (options.rogue === true) {
      await writeFile(join(work, 'openssl.cnf'), '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n');
      // Same names as the real CAs: only the signature tells them apart.
      await createCa(work, 'issuing', '/O=Example Bank/CN=Example Bank Signing CA', undefined);
      issuer = join(work, 'issuing');
    }
    const publicKey = join(work, 'subject.pub');
    const extensions = join(work, 'ext.cnf');
    const out = join(work, 'cert.pem');
    await writeFile(publicKey, options.publicKeyPem);
    const usage = options.keyUsage ?? 'digitalSignature';
    await writeFile(extensions, `[ext]\nbasicConstraints = critical,CA:FALSE\n${usage === 'none' ? '' : `keyUsage = critical,${usage}\n`}authorityKeyIdentifier = keyid\n`);
    await openssl([
      'x509', '-new', '-force_pubkey', publicKey, '-subj', `/O=Example Bank/CN=${options.commonName}`,
      '-CA', `${issuer}.pem`, '-CAkey', `${issuer}-key.pem`, '-set_serial', serial(), '-sha256',
      '-days', String(options.days ?? 397), '-extfile', extensions, '-extensions', 'ext', '-out', out,
    ]);
    return await readFile(out, 'utf8');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function createCa(dir: string, name: string, subject: string, parent: string | undefined): Promise<void> {
  const key = join(dir, `${name}-key.pem`);
  const cert = join(dir, `${name}.pem`);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  await rm(key, { force: true });
  await writeFile(key, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  await chmod(key, 0o600);
  const config = join(dir, 'openssl.cnf');
  const caExtensions = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash'];
  if (parent === undefined) {
    await openssl(['req', '-config', config, '-new', '-x509', '-sha256', '-key', key, '-days', '3650', '-subj', subject, ...caExtensions, '-out', cert]);
    return;
  }
  const parentBase = join(dir, parent);
  const extensions = join(dir, `${name}-ext.cnf`);
  await writeFile(extensions, '[ext]\nbasicConstraints = critical,CA:TRUE,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n');
  const publicKey = join(dir, `${name}.pub`);
  await openssl(['pkey', '-in', key, '-pubout', '-out', publicKey]);
  await openssl([
    'x509', '-new', '-force_pubkey', publicKey, '-subj', subject, '-CA', `${parentBase}.pem`, '-CAkey', `${parentBase}-key.pem`,
    '-set_serial', serial(), '-sha256', '-days', '1825', '-extfile', extensions, '-extensions', 'ext', '-out', cert,
  ]);
}

/** Positive and random, as RFC 5280 asks. */
function serial(): string {
  return `0x1${randomBytes(15).toString('hex')}`;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl failed: ${stderr.trim() || String(error)}`);
  }
}
