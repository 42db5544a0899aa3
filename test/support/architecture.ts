import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { CmKeyResource, CreateKeyInput } from '../../emulator/index.js';
import { openHsm, type Hsm } from '../../hsm/index.js';
import { certificateFor, testAuthority } from './certificates.js';
import { eventually, rawRequest } from './http.js';
import { startJwksRsaPartner, startPythonPartner, verify, type ClientName, type PartnerClient, type PartnerProcess } from './partner-clients.js';
import { startFunction, type RunningFunction } from './processes.js';
import { startPublisherStack, type PublisherStack } from './publisher-stack.js';
import { SoftHsmToken } from './softhsm.js';

/** CM usageMask bits: Sign|Verify and Encrypt|Decrypt. */
export const SIGN_VERIFY = 1 | 2;
export const ENCRYPT_DECRYPT = 4 | 8;

/**
 * The whole architecture on loopback: a SoftHSM2 token that is both CipherTrust Manager's HSM (the
 * emulator makes its keys there) and the internal apps' PKCS#11 token; the CM emulator posting a
 * CloudEvent to key-rotated on every change (standing in for the Broker); key-rotated, jwks-get
 * and jwk-get in their own processes on one store. Public keys reach /jwks only through CM's REST
 * API and key-rotated.
 */
export interface Architecture {
  readonly token: SoftHsmToken;
  /** The internal apps' view: PKCS#11 only. */
  readonly hsm: Hsm;
  readonly publisher: PublisherStack;
  readonly jwksGet: RunningFunction;
  readonly jwkGet: RunningFunction;
  /** What partners configure: GET /jwks on jwks-get. */
  readonly jwksUrl: string;
  /**
   * With `certificates`: imports into CM a certificate for the key `id` from the test bank PKI
   * (labelled for publication and `jwks-key=<name>`), as the bank's CA would issue it.
   */
  certifyKey(id: string): Promise<void>;
  /** The bank PKI's root (JWKS_CERT_TRUST_ANCHORS) and issuing CA, PEM; undefined without `certificates`. */
  readonly pki: { readonly anchorPem: string; readonly issuingPem: string } | undefined;
  /** Creates a key in CM (and so in the token), labelled for publication. */
  createKey(input: Omit<CreateKeyInput, 'labels'> & { labels?: Record<string, string> }): CmKeyResource;
  /** Kids served at /jwks now. */
  servedKids(): Promise<string[]>;
  /** Waits until /jwks serves exactly these kids (in any order). */
  waitUntilServed(kids: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export async function startArchitecture(options: { retainDeactivated?: string; certificates?: boolean } = {}): Promise<Architecture> {
  const token = await SoftHsmToken.create();
  const closers: (() => Promise<void> | void)[] = [() => token.close()];
  const close = async (): Promise<void> => {
    for (const closer of closers.reverse()) await closer();
  };
  try {
    const ca = options.certificates === true ? await testAuthority() : undefined;
    if (ca !== undefined) closers.push(() => ca.remove());
    const publisher = await startPublisherStack('file', {
      emulator: { keyMaterial: token },
      env: { JWKS_RETAIN_DEACTIVATED: options.retainDeactivated ?? '1h', ...(ca !== undefined && { JWKS_CERT_TRUST_ANCHORS: join(ca.dir, 'root.pem') }) },
    });
    if (ca !== undefined) publisher.emulator.keys.importCertificate({ name: 'bank-issuing-ca', material: ca.issuingPem, labels: { jwks: 'publish' } });
    closers.push(() => publisher.close());
    // CipherTrust has no webhook: in production the rotation pipeline posts this event to the Broker.
    publisher.emulator.setEventSink(publisher.keyRotated.url);
    const servingEnv = { ...publisher.backend.env, JWKS_REVALIDATE_MS: '200' };
    const jwksGet = await startFunction({ host: 'lean', target: 'jwks-get', env: servingEnv });
    closers.push(() => jwksGet.stop());
    const jwkGet = await startFunction({ host: 'lean', target: 'jwk-get', env: servingEnv });
    closers.push(() => jwkGet.stop());
    const hsm = openHsm(token.options);
    closers.push(() => hsm.close());
    const jwksUrl = `${jwksGet.url}/jwks`;
    const servedKids = async (): Promise<string[]> => {
      const response = await rawRequest(jwksGet.url, '/jwks');
      if (response.status !== 200) return [];
      return (JSON.parse(response.body.toString()) as { keys: { kid: string }[] }).keys.map((key) => key.kid).sort();
    };
    return {
      token,
      hsm,
      publisher,
      jwksGet,
      jwkGet,
      jwksUrl,
      createKey: (input) => publisher.emulator.keys.create({ ...input, labels: { jwks: 'publish', ...input.labels } }),
      pki: ca === undefined ? undefined : { anchorPem: ca.anchorPem, issuingPem: ca.issuingPem },
      async certifyKey(id) {
        if (ca === undefined) throw new Error('startArchitecture({ certificates: true }) is needed to certify keys');
        const key = publisher.emulator.keys.get(id);
        if (key?.publickey === undefined) throw new Error(`no public key for ${id}`);
        const pem = await certificateFor(ca, createPublicKey(key.publickey), { commonName: `${key.name}-v${key.version}` });
        publisher.emulator.keys.importCertificate({ name: `${key.name}-v${key.version}-certificate`, material: pem, labels: { jwks: 'publish', 'jwks-key': key.name } });
      },
      servedKids,
      async waitUntilServed(kids) {
        const wanted = JSON.stringify([...kids].sort());
        await eventually(async () => JSON.stringify(await servedKids()) === wanted, 20_000);
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * The four clients partners use, each with a cache of `lifespanSeconds`: jose createRemoteJWKSet
 * in this process, PyJWT and jwcrypto in a Python process, auth0 jwks-rsa in a Node process.
 */
export interface Partners {
  readonly names: readonly PartnerName[];
  /** Verifies a token with one client; resolves to the kid used, or rejects with the client's error. */
  verify(name: PartnerName, token: string): Promise<string>;
  readonly python: PartnerProcess;
  readonly jwksRsa: PartnerProcess;
  close(): Promise<void>;
}

export type PartnerName = 'jose' | ClientName;

export function startPartners(jwksUrl: string, lifespanSeconds: number): Partners {
  // jose refetches at most once per cooldown for an unknown kid; kept under the lifespan.
  const jose: JWTVerifyGetKey = createRemoteJWKSet(new URL(jwksUrl), { cacheMaxAge: lifespanSeconds * 1000, cooldownDuration: 500 });
  const python = startPythonPartner({ jwksUrl, lifespanSeconds });
  const jwksRsa = startJwksRsaPartner({ jwksUrl, lifespanMs: lifespanSeconds * 1000 });
  const clients: Record<ClientName, PartnerClient> = {
    pyjwt: { partner: python, name: 'pyjwt' },
    jwcrypto: { partner: python, name: 'jwcrypto' },
    'jwks-rsa': { partner: jwksRsa, name: 'jwks-rsa' },
  };
  return {
    names: ['jose', 'pyjwt', 'jwcrypto', 'jwks-rsa'],
    python,
    jwksRsa,
    async verify(name, token) {
      if (name === 'jose') {
        const { protectedHeader } = await jwtVerify(token, jose);
        return protectedHeader.kid!;
      }
      const answer = await verify(clients[name], token);
      if (!answer.ok) throw new Error(`${name}: ${answer.error}`);
      return answer.kid;
    },
    async close() {
      await Promise.all([python.close(), jwksRsa.close()]);
    },
  };
}
