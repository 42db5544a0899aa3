/**
 * Real partner clients, from npm, verify a token signed in the test with a private key whose public
 * half is served: jose createRemoteJWKSet and auth0 jwks-rsa, through jwks-get and through jwk-get.
 */
import { createRemoteJWKSet, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { openBackend, publish, type BackendName, type TestBackend } from '../support/backends.js';
import { ecKey, rsaKey, signToken, type TestKey } from '../support/keys.js';
import { startFunction, type RunningFunction } from '../support/processes.js';
import { fileURLToPath } from 'node:url';

const jwksRsaClient = fileURLToPath(new URL('../../dist/test/clients/jwks-rsa-verify.js', import.meta.url));

/** Runs the jwks-rsa partner client (test/clients/jwks-rsa-verify.ts) in its own Node process. */
async function verifyWithJwksRsa(uri: string, token: string, singleKey = false): Promise<{ kid?: string; verified?: boolean; signingKids?: string[]; error?: string }> {
  const args = [jwksRsaClient, uri, token, ...(singleKey ? ['--single-key'] : [])];
  const { stdout } = await promisify(execFile)(process.execPath, args, { env: { PATH: process.env.PATH ?? '' } }).catch(
    (error: { stdout?: string }) => ({ stdout: error.stdout ?? '{}' }),
  );
  return JSON.parse(stdout) as { kid?: string; verified?: boolean; signingKids?: string[]; error?: string };
}

describe.each<BackendName>(['file', 's3'])('real clients over the %s store', (backendName) => {
  let backend: TestBackend;
  let jwks: RunningFunction;
  let jwk: RunningFunction;
  let signers: TestKey[];
  let encryption: TestKey;
  let unpublished: TestKey;

  beforeAll(async () => {
    backend = await openBackend(backendName);
    signers = await Promise.all([rsaKey('sig', 'RS256'), rsaKey('sig', 'PS256'), ecKey('P-256'), ecKey('P-384')]);
    [encryption, unpublished] = await Promise.all([rsaKey('enc'), rsaKey('sig')]);
    await publish(backend.store, [...signers, encryption].map((key) => key.jwk));
    [jwks, jwk] = await Promise.all([
      startFunction({ host: 'lean', target: 'jwks-get', env: backend.env, waitForReady: true }),
      startFunction({ host: 'lean', target: 'jwk-get', env: backend.env, waitForReady: true }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([jwks?.stop(), jwk?.stop()]);
    await backend?.close();
  });

  it('jose createRemoteJWKSet verifies tokens of every signing algorithm from /jwks', async () => {
    const keySet = createRemoteJWKSet(new URL(`${jwks.url}/jwks`));
    for (const signer of signers) {
      const { payload, protectedHeader } = await jwtVerify(await signToken(signer), keySet, { issuer: 'https://bank.example/issuer' });
      expect(protectedHeader.kid).toBe(signer.jwk.kid);
      expect(payload.sub).toBe('partner-test');
    }
  });

  it('jose rejects a token whose kid is not published', async () => {
    const keySet = createRemoteJWKSet(new URL(`${jwks.url}/jwks`));
    await expect(jwtVerify(await signToken(unpublished), keySet)).rejects.toThrow(/no applicable key found/i);
  });

  it('jose verifies with the single key fetched from /jwk/{kid}', async () => {
    for (const signer of signers) {
      const token = await signToken(signer);
      const { kid, alg } = decodeProtectedHeader(token);
      const response = await fetch(`${jwk.url}/jwk/${kid}`);
      expect(response.status).toBe(200);
      const key = await importJWK((await response.json()) as JWK, alg);
      await expect(jwtVerify(token, key)).resolves.toMatchObject({ protectedHeader: { kid } });
    }
  });

  it('jwks-rsa finds each signing key in /jwks and the token verifies with it', async () => {
    for (const signer of signers) {
      const result = await verifyWithJwksRsa(`${jwks.url}/jwks`, await signToken(signer));
      expect(result).toMatchObject({ kid: signer.jwk.kid, verified: true });
      // jwks-rsa keeps only sig keys: the encryption key must not be offered for verification.
      expect(result.signingKids?.sort()).toEqual(signers.map((key) => key.jwk.kid).sort());
    }
  });

  it('jwks-rsa rejects a token whose kid is not published', async () => {
    const result = await verifyWithJwksRsa(`${jwks.url}/jwks`, await signToken(unpublished));
    expect(result.error).toMatch(/SigningKeyNotFoundError/);
  });

  it('jwks-rsa verifies through /jwk/{kid} with a fetcher for single keys', async () => {
    for (const signer of signers) {
      const result = await verifyWithJwksRsa(`${jwk.url}/jwk/${signer.jwk.kid}`, await signToken(signer), true);
      expect(result).toMatchObject({ kid: signer.jwk.kid, verified: true });
    }
  });
});
