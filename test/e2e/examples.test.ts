/**
 * The README's snippets (examples/, included verbatim) run against the whole architecture: an
 * internal app signs and decrypts through PKCS#11, partners verify and encrypt with jose, PyJWT
 * and jwcrypto.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ENCRYPT_DECRYPT, SIGN_VERIFY, startArchitecture, type Architecture } from '../support/architecture.js';
import { systemPython } from '../support/partner-clients.js';
import { describeWithHsm } from '../support/softhsm.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../..', import.meta.url));

describeWithHsm('end to end: the README examples', () => {
  let architecture: Architecture;
  let env: Record<string, string>;

  /** Runs an example as its user would, with only the environment the README names. */
  async function example(file: string, ...args: string[]): Promise<string> {
    const [command, script] = file.endsWith('.py') ? [systemPython, resolve(repo, 'examples', file)] : [process.execPath, resolve(repo, 'dist/examples', file)];
    const { stdout } = await run(command, [script, ...args], { env, timeout: 20_000 });
    return stdout.trim();
  }

  beforeAll(async () => {
    architecture = await startArchitecture();
    architecture.createKey({ name: 'payments-signing', algorithm: 'ec', curveid: 'prime256v1', usageMask: SIGN_VERIFY });
    architecture.createKey({ name: 'partner-inbound', algorithm: 'rsa', size: 2048, usageMask: ENCRYPT_DECRYPT, labels: { 'jwks-alg': 'RSA-OAEP' } });
    const kids = await Promise.all(['payments-signing', 'partner-inbound'].map(async (label) => (await architecture.hsm.keys(label))[0]!.kid));
    await architecture.waitUntilServed(kids);
    env = {
      PATH: '/usr/bin:/bin',
      JWKS_URL: architecture.jwksUrl,
      PKCS11_LIBRARY: architecture.token.options.libraryPath,
      PKCS11_TOKEN_LABEL: architecture.token.options.tokenLabel,
      PKCS11_PIN: architecture.token.options.pin,
      SOFTHSM2_CONF: process.env.SOFTHSM2_CONF!,
    };
  }, 90_000);
  afterAll(async () => {
    await architecture?.close();
  });

  it('the internal app signs a JWT that the jose and PyJWT partners verify', async () => {
    const jwt = await example('internal-app.js', 'sign', 'payments-signing', 'ES256');
    const kid = (await architecture.hsm.keys('payments-signing'))[0]!.kid;
    expect(JSON.parse(await example('partner-jose.js', 'verify', jwt))).toMatchObject({ kid, payload: { sub: 'payment-7' } });
    expect(JSON.parse(await example('partner_pyjwt.py', jwt))).toMatchObject({ kid, claims: { sub: 'payment-7' } });
  });

  it('the jose and jwcrypto partners encrypt to the published key, the internal app decrypts', async () => {
    const fromJose = await example('partner-jose.js', 'encrypt', 'from a jose partner');
    expect(await example('internal-app.js', 'decrypt', 'partner-inbound', fromJose)).toBe('from a jose partner');
    const fromJwcrypto = await example('partner_jwcrypto.py', 'from a jwcrypto partner');
    expect(await example('internal-app.js', 'decrypt', 'partner-inbound', fromJwcrypto)).toBe('from a jwcrypto partner');
  });

  it('the partners check the issuer, not only the signature', async () => {
    // Validly signed with our key, but for another issuer.
    const signer = await architecture.hsm.signer({ label: 'payments-signing', alg: 'ES256' });
    const jwt = await signer.signJwt({ iss: 'https://test.bank.example', sub: 'payment-7' });
    await expect(example('partner-jose.js', 'verify', jwt)).rejects.toThrow(/unexpected "iss" claim value/);
    await expect(example('partner_pyjwt.py', jwt)).rejects.toThrow(/InvalidIssuerError/);
  });
});
