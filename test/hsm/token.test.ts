import { inspect } from 'node:util';
import pkcs11js from 'pkcs11js';
import { CompactEncrypt, calculateJwkThumbprint, compactVerify, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import type { KeyMaterial, KeySpec } from '../../emulator/index.js';
import {
  AmbiguousKeyError,
  HsmConfigurationError,
  JweDecryptionFailedError,
  KeyNotFoundError,
  MechanismNotSupportedError,
  TokenOperationError,
  openHsm,
  type Hsm,
  type SigningAlgorithm,
} from '../../hsm/index.js';
import { acquireLibrary } from '../../hsm/pkcs11-library.js';
import { describeWithHsm, SoftHsmToken } from '../support/softhsm.js';

const SIGN = 1 | 2;
const ENCRYPT = 4 | 8;
const RSA_2048: KeySpec = { algorithm: 'RSA', size: 2048 };
const P256: KeySpec = { algorithm: 'EC', curveid: 'prime256v1', size: 256 };
const P384: KeySpec = { algorithm: 'EC', curveid: 'secp384r1', size: 384 };
const P521: KeySpec = { algorithm: 'EC', curveid: 'secp521r1', size: 521 };

/** The kid the publisher would publish for this material: the thumbprint of the public key CM shows. */
async function publishedKid(material: KeyMaterial): Promise<string> {
  return calculateJwkThumbprint(material.publicKey!.export({ format: 'jwk' }), 'sha256');
}

function publicJwkOf(material: KeyMaterial): JWK {
  return material.publicKey!.export({ format: 'jwk' });
}

async function encryptTo(material: KeyMaterial, alg: string, enc: string, extra: Record<string, unknown> = {}, plaintext = 'transfer 100 EUR'): Promise<string> {
  return new CompactEncrypt(new TextEncoder().encode(plaintext))
    .setProtectedHeader({ alg, enc, ...extra })
    .encrypt(await importJWK(publicJwkOf(material), alg));
}

describeWithHsm('internal apps on a PKCS#11 token (SoftHSM2)', () => {
  let token: SoftHsmToken;
  let hsm: Hsm;
  const material: Record<string, KeyMaterial> = {};

  beforeAll(async () => {
    token = await SoftHsmToken.create('hsm-module-tests');
    material.rsaSign = token.generate(RSA_2048, { name: 'rsa-sign', version: 0, usageMask: SIGN });
    material.p256Sign = token.generate(P256, { name: 'p256-sign', version: 0, usageMask: SIGN });
    material.p384Sign = token.generate(P384, { name: 'p384-sign', version: 0, usageMask: SIGN });
    material.p521Sign = token.generate(P521, { name: 'p521-sign', version: 0, usageMask: SIGN });
    material.rsaEnc = token.generate(RSA_2048, { name: 'rsa-enc', version: 0, usageMask: ENCRYPT });
    material.p256Enc = token.generate(P256, { name: 'p256-enc', version: 0, usageMask: ENCRYPT });
    material.p384Enc = token.generate(P384, { name: 'p384-enc', version: 0, usageMask: ENCRYPT });
    material.twoV0 = token.generate(P256, { name: 'two-versions', version: 0, usageMask: SIGN });
    material.twoV1 = token.generate(P256, { name: 'two-versions', version: 1, usageMask: SIGN });
    hsm = openHsm(token.options);
  }, 60_000);
  afterAll(async () => {
    hsm?.close();
    await token?.close();
  });

  describe('signing', () => {
    it.each<[SigningAlgorithm, string]>([
      ['RS256', 'rsaSign'],
      ['RS384', 'rsaSign'],
      ['RS512', 'rsaSign'],
      ['PS256', 'rsaSign'],
      ['PS384', 'rsaSign'],
      ['PS512', 'rsaSign'],
      ['ES256', 'p256Sign'],
      ['ES384', 'p384Sign'],
      ['ES512', 'p521Sign'],
    ])('signs a JWT with %s that jose verifies with the public key CM shows, under the kid the publisher publishes', async (alg, key) => {
      const label = { rsaSign: 'rsa-sign', p256Sign: 'p256-sign', p384Sign: 'p384-sign', p521Sign: 'p521-sign' }[key]!;
      const signer = await hsm.signer({ label, alg });
      const jwt = await signer.signJwt({ sub: 'payment-42', amount: '100.00' });
      const header = decodeProtectedHeader(jwt);
      expect(header).toEqual({ alg, kid: await publishedKid(material[key]!), typ: 'JWT' });
      const { payload } = await jwtVerify(jwt, material[key]!.publicKey!, { algorithms: [alg] });
      expect(payload).toEqual({ sub: 'payment-42', amount: '100.00' });
      expect(signer.publicJwk()).toEqual({ ...publicJwkOf(material[key]!), kid: header.kid, alg, use: 'sig' });
    });

    it('signs any payload as a compact JWS, with extra header members but never a second alg or kid', async () => {
      const signer = await hsm.signer({ label: 'p256-sign', alg: 'ES256' });
      const jws = await signer.sign('not json at all', { cty: 'text/plain' });
      const { payload, protectedHeader } = await compactVerify(jws, material.p256Sign!.publicKey!);
      expect(Buffer.from(payload).toString()).toBe('not json at all');
      expect(protectedHeader).toEqual({ alg: 'ES256', kid: signer.kid, cty: 'text/plain' });
      await expect(signer.sign('x', { kid: 'someone-else' })).rejects.toThrow(/"kid" is set by the signer/);
      await expect(signer.signJwt([] as unknown as Record<string, unknown>)).rejects.toThrow(/JSON object/);
    });

    it('refuses an algorithm that does not fit the key, naming what it looked for', async () => {
      await expect(hsm.signer({ label: 'rsa-sign', alg: 'ES256' })).rejects.toThrow(KeyNotFoundError);
      await expect(hsm.signer({ label: 'p256-sign', alg: 'ES384' })).rejects.toThrow(/no key labelled "p256-sign" that can sign with ES384/);
      await expect(hsm.signer({ label: 'p256-sign', alg: 'HS256' as SigningAlgorithm })).rejects.toThrow(/unsupported signing algorithm HS256/);
      await expect(hsm.signer({ label: 'no-such-key', alg: 'RS256' })).rejects.toThrow(KeyNotFoundError);
    });

    it('does not sign with an encryption key, nor decrypt with a signing key', async () => {
      await expect(hsm.signer({ label: 'rsa-enc', alg: 'RS256' })).rejects.toThrow(/that can sign/);
      await expect(hsm.decrypter({ label: 'rsa-sign' })).rejects.toThrow(/that can decrypt/);
    });

    it('asks for a kid when a label holds two versions, and signs with the one named', async () => {
      const kids = [await publishedKid(material.twoV0!), await publishedKid(material.twoV1!)];
      const ambiguous = await hsm.signer({ label: 'two-versions', alg: 'ES256' }).catch((error: unknown) => error);
      expect(ambiguous).toBeInstanceOf(AmbiguousKeyError);
      expect([...(ambiguous as AmbiguousKeyError).kids].sort()).toEqual([...kids].sort());
      for (const [index, kid] of kids.entries()) {
        const signer = await hsm.signer({ label: 'two-versions', alg: 'ES256', kid });
        const jwt = await signer.signJwt({ version: index });
        await expect(jwtVerify(jwt, [material.twoV0, material.twoV1][index]!.publicKey!)).resolves.toBeDefined();
      }
      await expect(hsm.signer({ label: 'two-versions', alg: 'ES256', kid: 'not-a-kid' })).rejects.toThrow(/no key "two-versions" with kid not-a-kid/);
      expect((await hsm.keys('two-versions')).map((key) => key.kid).sort()).toEqual([...kids].sort());
    });
  });

  describe('decryption', () => {
    it.each([
      ['RSA-OAEP', 'A256GCM', 'rsaEnc', 'rsa-enc'],
      ['RSA-OAEP', 'A128GCM', 'rsaEnc', 'rsa-enc'],
      ['RSA-OAEP', 'A128CBC-HS256', 'rsaEnc', 'rsa-enc'],
      ['RSA-OAEP', 'A256CBC-HS512', 'rsaEnc', 'rsa-enc'],
      ['ECDH-ES', 'A256GCM', 'p256Enc', 'p256-enc'],
      ['ECDH-ES', 'A192GCM', 'p256Enc', 'p256-enc'],
      ['ECDH-ES', 'A128CBC-HS256', 'p384Enc', 'p384-enc'],
      ['ECDH-ES', 'A256GCM', 'p384Enc', 'p384-enc'],
    ])('decrypts a jose %s / %s JWE to the %s key, the private key staying in the token', async (alg, enc, key, label) => {
      const kid = await publishedKid(material[key]!);
      const jwe = await encryptTo(material[key]!, alg, enc, { kid });
      const decrypter = await hsm.decrypter({ label });
      const result = await decrypter.decrypt(jwe);
      expect(result.plaintext.toString()).toBe('transfer 100 EUR');
      expect(result.kid).toBe(kid);
      expect(result.protectedHeader).toMatchObject({ alg, enc, kid });
    });

    it('uses the agreement info of an ECDH-ES JWE (apu, apv)', async () => {
      const jwe = await new CompactEncrypt(new TextEncoder().encode('with party info'))
        .setProtectedHeader({ alg: 'ECDH-ES', enc: 'A256GCM' })
        .setKeyManagementParameters({ apu: new TextEncoder().encode('partner-bank'), apv: new TextEncoder().encode('our-bank') })
        .encrypt(await importJWK(publicJwkOf(material.p256Enc!), 'ECDH-ES'));
      expect(decodeProtectedHeader(jwe)).toHaveProperty('apu');
      const decrypter = await hsm.decrypter({ label: 'p256-enc' });
      expect((await decrypter.decrypt(jwe)).plaintext.toString()).toBe('with party info');
    });

    it('says plainly that RSA-OAEP-256 needs an HSM that supports it (SoftHSM2 2.6 refuses SHA-256 OAEP)', async () => {
      const jwe = await encryptTo(material.rsaEnc!, 'RSA-OAEP-256', 'A256GCM');
      const decrypter = await hsm.decrypter({ label: 'rsa-enc' });
      const error = await decrypter.decrypt(jwe).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(MechanismNotSupportedError);
      expect((error as MechanismNotSupportedError).pkcs11Code).toBe('CKR_ARGUMENTS_BAD');
      expect((error as Error).message).toMatch(/refused RSA-OAEP-256 for key "rsa-enc"/);
    });

    it('gives one answer for a tampered JWE, whatever was changed', async () => {
      const decrypter = await hsm.decrypter({ label: 'rsa-enc' });
      const jwe = await encryptTo(material.rsaEnc!, 'RSA-OAEP', 'A256GCM');
      const parts = jwe.split('.');
      const flip = (part: string): string => {
        const bytes = Buffer.from(part, 'base64url');
        bytes[bytes.length - 1]! ^= 1;
        return bytes.toString('base64url');
      };
      for (const index of [1, 2, 3, 4]) {
        const tampered = parts.map((part, at) => (at === index ? flip(part) : part)).join('.');
        await expect(decrypter.decrypt(tampered)).rejects.toThrow(JweDecryptionFailedError);
      }
    });

    it('finds a version added to the token after it started, by the kid the sender names', async () => {
      const decrypter = await hsm.decrypter({ label: 'rotating-enc', rescanCooldownMs: 0 }).catch(() => undefined);
      expect(decrypter).toBeUndefined(); // nothing under that label yet
      const first = token.generate(P256, { name: 'rotating-enc', version: 0, usageMask: ENCRYPT });
      const live = await hsm.decrypter({ label: 'rotating-enc', rescanCooldownMs: 0 });
      const second = token.generate(P256, { name: 'rotating-enc', version: 1, usageMask: ENCRYPT });
      for (const version of [first, second]) {
        const jwe = await encryptTo(version, 'ECDH-ES', 'A256GCM', { kid: await publishedKid(version) });
        expect((await live.decrypt(jwe)).kid).toBe(await publishedKid(version));
      }
      // Without a kid each version is tried in turn.
      expect((await live.decrypt(await encryptTo(second, 'ECDH-ES', 'A256GCM'))).plaintext.toString()).toBe('transfer 100 EUR');
      await expect(live.decrypt(await encryptTo(second, 'ECDH-ES', 'A256GCM', { kid: 'unknown' }))).rejects.toThrow(KeyNotFoundError);
    });
  });

  it('rescans for an unknown kid once per cooldown, and concurrent messages share the scan', async () => {
    let now = 1_000_000;
    token.generate(P256, { name: 'cooldown-enc', version: 0, usageMask: ENCRYPT });
    const decrypter = await hsm.decrypter({ label: 'cooldown-enc', rescanCooldownMs: 60_000, now: () => now });
    const added = token.generate(P256, { name: 'cooldown-enc', version: 1, usageMask: ENCRYPT });
    const jwe = await encryptTo(added, 'ECDH-ES', 'A256GCM', { kid: await publishedKid(added) });
    await expect(decrypter.decrypt(jwe)).rejects.toThrow(KeyNotFoundError); // within the cooldown: not rescanned
    now += 60_000;
    const results = await Promise.all([decrypter.decrypt(jwe), decrypter.decrypt(jwe), decrypter.decrypt(jwe)]);
    expect(results.map((result) => result.plaintext.toString())).toEqual(['transfer 100 EUR', 'transfer 100 EUR', 'transfer 100 EUR']);
    await expect(decrypter.decrypt(await encryptTo(added, 'ECDH-ES', 'A256GCM', { kid: 'x'.repeat(500) }))).rejects.toThrow(/kid "x{64}"$/);
  });

  describe('the token', () => {
    it('goes on signing and decrypting after the HSM dropped every session', async () => {
      const signer = await hsm.signer({ label: 'p256-sign', alg: 'ES256' });
      const decrypter = await hsm.decrypter({ label: 'rsa-enc' });
      token.closeAllSessions();
      await expect(jwtVerify(await signer.signJwt({ after: 'restart' }), material.p256Sign!.publicKey!)).resolves.toBeDefined();
      const jwe = await encryptTo(material.rsaEnc!, 'RSA-OAEP', 'A256GCM');
      expect((await decrypter.decrypt(jwe)).plaintext.toString()).toBe('transfer 100 EUR');
    });

    it('never shows the PIN: not in a serialized or inspected signer, decrypter or Hsm', async () => {
      const signer = await hsm.signer({ label: 'p256-sign', alg: 'ES256' });
      const decrypter = await hsm.decrypter({ label: 'rsa-enc' });
      for (const value of [signer, decrypter, hsm]) {
        expect(JSON.stringify(value)).not.toContain(token.options.pin);
        expect(inspect(value, { depth: 20, showHidden: true })).not.toContain(token.options.pin);
      }
    });

    it('reports a token outage as such, never as a message that cannot be decrypted, and recovers', async () => {
      const decrypter = await hsm.decrypter({ label: 'rsa-enc' });
      const ecDecrypter = await hsm.decrypter({ label: 'p256-enc' });
      const signer = await hsm.signer({ label: 'p256-sign', alg: 'ES256' });
      const rsaJwe = await encryptTo(material.rsaEnc!, 'RSA-OAEP', 'A256GCM');
      const ecJwe = await encryptTo(material.p256Enc!, 'ECDH-ES', 'A256GCM');
      // The PKCS#11 library restarts under the app (as a network HSM client can).
      const library = acquireLibrary(token.options.libraryPath);
      library.p11.C_Finalize();
      try {
        for (const attempt of [decrypter.decrypt(rsaJwe), ecDecrypter.decrypt(ecJwe), signer.signJwt({ during: 'outage' })]) {
          const error = await attempt.catch((caught: unknown) => caught);
          expect(error).toBeInstanceOf(TokenOperationError);
          expect((error as TokenOperationError).pkcs11Code).toBe('CKR_CRYPTOKI_NOT_INITIALIZED');
        }
      } finally {
        library.p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
        library.release();
      }
      expect((await decrypter.decrypt(rsaJwe)).plaintext.toString()).toBe('transfer 100 EUR');
      expect((await ecDecrypter.decrypt(ecJwe)).plaintext.toString()).toBe('transfer 100 EUR');
      await expect(jwtVerify(await signer.signJwt({ after: 'outage' }), material.p256Sign!.publicKey!)).resolves.toBeDefined();
    });

    it('answers a truncated RSA encrypted key as a bad message without asking the token', async () => {
      const decrypter = await hsm.decrypter({ label: 'rsa-enc' });
      const parts = (await encryptTo(material.rsaEnc!, 'RSA-OAEP', 'A256GCM')).split('.');
      parts[1] = Buffer.from(parts[1]!, 'base64url').subarray(1).toString('base64url');
      await expect(decrypter.decrypt(parts.join('.'))).rejects.toThrow(JweDecryptionFailedError);
    });

    it('refuses a wrong PIN, an unknown token and a missing library, naming what to fix', () => {
      // Login is per process and token: only when nobody here is logged in is the PIN checked.
      token.closeAllSessions();
      const label = token.options.tokenLabel;
      expect(() => openHsm({ ...token.options, pin: 'wrong-pin' })).toThrow(`login to token "${label}" refused: CKR_PIN_INCORRECT`);
      expect(() => openHsm({ ...token.options, tokenLabel: 'payments' })).toThrow(new RegExp(`no initialized token labelled "payments" .*tokens present: .*"${label}"`));
      expect(() => openHsm({ ...token.options, libraryPath: '/nonexistent/libcadp_pkcs11.so' })).toThrow(HsmConfigurationError);
      // The failed opens released the library: the module still works.
      expect(() => openHsm(token.options).close()).not.toThrow();
    });
  });
});
