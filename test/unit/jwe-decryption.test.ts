import { constants, createCipheriv, createECDH, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { CompactEncrypt } from 'jose';
import { KEY_MANAGEMENT_ALGORITHMS, parseCompactJwe, type KeyManagementAlgorithm } from '../../hsm/compact-jwe.js';
import { concatKdf } from '../../hsm/concat-kdf.js';
import { CONTENT_ENCRYPTIONS, ContentDecryptionError, decryptContent, type ContentEncryption } from '../../hsm/content-decryption.js';
import { JweDecryptionFailedError, JweInvalidError, MechanismNotSupportedError, TokenOperationError } from '../../hsm/errors.js';
import { decryptJwe, type DecryptedContent, type KeyDecryption } from '../../hsm/jwe-decryption.js';
import type { EcCurve, PublicKeyJwk } from '../../hsm/public-jwk.js';

/**
 * Everything above the PKCS#11 token, with the token's two operations done by node:crypto: this is
 * where RSA-OAEP-256 is tested, since SoftHSM2 2.6 cannot do OAEP with SHA-256.
 */

const NODE_CURVE: Readonly<Record<EcCurve, string>> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' };
const CURVES = Object.keys(NODE_CURVE) as EcCurve[];
const PLAINTEXT = 'Überweisung 100,00 € an DE89 3704 0044 0532 0130 00';

/** The KeyDecryption port as the token implements it, with the private key in a KeyObject; counts its calls. */
class NodeKeyDecryption implements KeyDecryption {
  readonly calls = { rsaOaepDecrypt: 0, ecdhSharedSecret: 0 };

  constructor(private readonly privateKey: KeyObject) {}

  rsaOaepDecrypt(hash: 'sha1' | 'sha256', encryptedKey: Buffer): Buffer {
    this.calls.rsaOaepDecrypt += 1;
    return privateDecrypt({ key: this.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, encryptedKey);
  }

  ecdhSharedSecret(peerPoint: Buffer): Buffer {
    this.calls.ecdhSharedSecret += 1;
    const { crv, d } = this.privateKey.export({ format: 'jwk' });
    const ecdh = createECDH(NODE_CURVE[crv as EcCurve]);
    ecdh.setPrivateKey(Buffer.from(d!, 'base64url'));
    return ecdh.computeSecret(peerPoint);
  }
}

interface Recipient {
  readonly publicKey: KeyObject;
  readonly publicJwk: PublicKeyJwk;
  readonly port: NodeKeyDecryption;
}

function recipient(privateKey: KeyObject): Recipient {
  const publicKey = createPublicKey(privateKey);
  const jwk = publicKey.export({ format: 'jwk' });
  const publicJwk: PublicKeyJwk = jwk.kty === 'RSA' ? { kty: 'RSA', n: jwk.n!, e: jwk.e! } : { kty: 'EC', crv: jwk.crv as EcCurve, x: jwk.x!, y: jwk.y! };
  return { publicKey, publicJwk, port: new NodeKeyDecryption(privateKey) };
}

const rsaRecipient = (bits: number): Recipient => recipient(generateKeyPairSync('rsa', { modulusLength: bits }).privateKey);
const ecRecipient = (crv: EcCurve): Recipient => recipient(generateKeyPairSync('ec', { namedCurve: crv }).privateKey);

const RSA: Readonly<Record<2048 | 3072, Recipient>> = { 2048: rsaRecipient(2048), 3072: rsaRecipient(3072) };
const EC: Readonly<Record<EcCurve, Recipient>> = { 'P-256': ecRecipient('P-256'), 'P-384': ecRecipient('P-384'), 'P-521': ecRecipient('P-521') };

interface PartyInfo {
  readonly apu: string;
  readonly apv: string;
}

async function encryptTo(to: Recipient, alg: KeyManagementAlgorithm, enc: ContentEncryption, partyInfo?: PartyInfo): Promise<string> {
  const jwe = new CompactEncrypt(Buffer.from(PLAINTEXT)).setProtectedHeader({ alg, enc });
  if (partyInfo !== undefined) jwe.setKeyManagementParameters({ apu: Buffer.from(partyInfo.apu), apv: Buffer.from(partyInfo.apv) });
  return jwe.encrypt(to.publicKey);
}

interface DecryptOptions {
  readonly algorithms?: readonly KeyManagementAlgorithm[];
  readonly port?: KeyDecryption;
  readonly maxBytes?: number;
}

/** What the decrypter does with a compact JWE once it has chosen the key: parse, then decrypt. */
function decrypted(jwe: string, to: Recipient, options: DecryptOptions = {}): DecryptedContent {
  return decryptJwe(parseCompactJwe(jwe, options.maxBytes ?? 1024 * 1024), to.publicJwk, options.port ?? to.port, options.algorithms ?? KEY_MANAGEMENT_ALGORITHMS);
}

const decrypt = (jwe: string, to: Recipient, options: DecryptOptions = {}): Buffer => decrypted(jwe, to, options).plaintext;

function thrownBy(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure, but it succeeded');
}

function expectInvalid(run: () => unknown, fragment: RegExp | string): void {
  const error = thrownBy(run);
  expect(error).toBeInstanceOf(JweInvalidError);
  if (typeof fragment === 'string') expect((error as Error).message).toContain(fragment);
  else expect((error as Error).message).toMatch(fragment);
}

/** One error, one message, whatever failed: no decryption oracle. */
function expectFailed(run: () => unknown): void {
  const error = thrownBy(run);
  expect(error).toBeInstanceOf(JweDecryptionFailedError);
  expect((error as Error).message).toBe('the JWE could not be decrypted');
}

/** The five parts of a compact JWE, in order, as the parser names them. */
const PARTS = ['protected header', 'encrypted key', 'iv', 'ciphertext', 'tag'] as const;

const segment = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

function without(object: Record<string, unknown>, ...members: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([member]) => !members.includes(member)));
}

function headerOf(jwe: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwe.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** The JWE with its protected header replaced (the other parts as they were). */
function withHeader(jwe: string, header: unknown): string {
  return [segment(header), ...jwe.split('.').slice(1)].join('.');
}

function withPart(jwe: string, index: number, part: string): string {
  return jwe
    .split('.')
    .map((value, at) => (at === index ? part : value))
    .join('.');
}

function flipBit(part: string, byte = -1): string {
  const bytes = Buffer.from(part, 'base64url');
  bytes[(bytes.length + byte) % bytes.length]! ^= 0x01;
  return bytes.toString('base64url');
}

/** A compact JWE made here rather than by jose: AES-GCM under `cek`, whatever enc the header says. */
function gcmJwe(header: Record<string, unknown>, encryptedKey: Buffer, cek: Buffer, ivBytes = 12): string {
  const protectedSegment = segment(header);
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv(`aes-${cek.length * 8}-gcm` as 'aes-128-gcm', cek, iv);
  cipher.setAAD(Buffer.from(protectedSegment, 'ascii'));
  const ciphertext = Buffer.concat([cipher.update(PLAINTEXT, 'utf8'), cipher.final()]);
  return [protectedSegment, encryptedKey, iv, ciphertext, cipher.getAuthTag()].map((part) => (typeof part === 'string' ? part : part.toString('base64url'))).join('.');
}

const withFlippedPart = (jwe: string, index: number): string => withPart(jwe, index, flipBit(jwe.split('.')[index]!));

describe('decryptJwe with RSA-OAEP and RSA-OAEP-256 (JWEs made by jose)', () => {
  const cases = (['RSA-OAEP', 'RSA-OAEP-256'] as const).flatMap((alg) => ([2048, 3072] as const).flatMap((bits) => CONTENT_ENCRYPTIONS.map((enc) => [alg, bits, enc] as const)));

  it.each(cases)('%s with RSA-%d and %s gives back the plaintext', async (alg, bits, enc) => {
    const jwe = await encryptTo(RSA[bits], alg, enc);
    expect(decrypt(jwe, RSA[bits]).toString('utf8')).toBe(PLAINTEXT);
  });

  it('asks the token for OAEP with SHA-1 for RSA-OAEP and SHA-256 for RSA-OAEP-256', async () => {
    const hashes: string[] = [];
    const port: KeyDecryption = {
      rsaOaepDecrypt: (hash, encryptedKey) => (hashes.push(hash), RSA[2048].port.rsaOaepDecrypt(hash, encryptedKey)),
      ecdhSharedSecret: () => Buffer.alloc(0),
    };
    decrypt(await encryptTo(RSA[2048], 'RSA-OAEP', 'A128GCM'), RSA[2048], { port });
    decrypt(await encryptTo(RSA[2048], 'RSA-OAEP-256', 'A128GCM'), RSA[2048], { port });
    expect(hashes).toEqual(['sha1', 'sha256']);
  });
});

describe('decryptJwe with ECDH-ES (JWEs made by jose)', () => {
  const partyInfo: PartyInfo = { apu: 'partner-bank', apv: 'our-bank' };
  const cases = CURVES.flatMap((crv) => CONTENT_ENCRYPTIONS.flatMap((enc) => [[crv, enc, 'without'] as const, [crv, enc, 'with'] as const]));

  it.each(cases)('on %s with %s, %s apu/apv, gives back the plaintext', async (crv, enc, withInfo) => {
    const info = withInfo === 'with' ? partyInfo : undefined;
    const jwe = await encryptTo(EC[crv], 'ECDH-ES', enc, info);
    const header = headerOf(jwe);
    expect(header.apu).toBe(info === undefined ? undefined : Buffer.from(info.apu).toString('base64url'));
    expect(header.apv).toBe(info === undefined ? undefined : Buffer.from(info.apv).toString('base64url'));
    expect(decrypt(jwe, EC[crv]).toString('utf8')).toBe(PLAINTEXT);
  });

  it('derives the key from apu and apv: the same JWE with them dropped from the header does not decrypt', async () => {
    const jwe = await encryptTo(EC['P-256'], 'ECDH-ES', 'A256GCM', partyInfo);
    expectFailed(() => decrypt(withHeader(jwe, without(headerOf(jwe), 'apu', 'apv')), EC['P-256']));
  });
});

describe('RFC 7518 Appendix C: the ECDH-ES key agreement computation example', () => {
  // Alice (the sender) and her ephemeral key; Bob (the recipient) and his static key.
  const ALICE_EPK = { kty: 'EC', crv: 'P-256', x: 'gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0', y: 'SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps' };
  const ALICE_D = '0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo';
  const BOB_PUBLIC = { kty: 'EC', crv: 'P-256', x: 'weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ', y: 'e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck' };
  const BOB_D = 'VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw';
  const Z = Buffer.from([
    158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49, 110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
  ]);
  const DERIVED_KEY = 'VqqN6vgjbSBcIijNcacQGg';
  const bobKey = createPrivateKey({ key: { ...BOB_PUBLIC, d: BOB_D }, format: 'jwk' });
  const sharedSecret = diffieHellman({ privateKey: bobKey, publicKey: createPublicKey({ key: ALICE_EPK, format: 'jwk' }) });

  it('node computes the appendix Z from either side', () => {
    expect(sharedSecret).toEqual(Z);
    const fromAlice = diffieHellman({ privateKey: createPrivateKey({ key: { ...ALICE_EPK, d: ALICE_D }, format: 'jwk' }), publicKey: createPublicKey({ key: BOB_PUBLIC, format: 'jwk' }) });
    expect(fromAlice).toEqual(Z);
  });

  it('concatKdf derives VqqN6vgjbSBcIijNcacQGg for A128GCM with apu "Alice" and apv "Bob"', () => {
    expect(concatKdf(sharedSecret, 128, 'A128GCM', Buffer.from('Alice'), Buffer.from('Bob')).toString('base64url')).toBe(DERIVED_KEY);
    expect(Buffer.from(DERIVED_KEY, 'base64url')).toEqual(Buffer.from([86, 170, 141, 234, 248, 35, 109, 32, 92, 34, 40, 205, 113, 167, 16, 26]));
  });

  it('concatKdf gives another key when any input of the agreement info changes', () => {
    const derived = (keyBits: number, algorithmId: string, apu: string, apv: string): string =>
      concatKdf(sharedSecret, keyBits, algorithmId, Buffer.from(apu), Buffer.from(apv)).subarray(0, 16).toString('base64url');
    expect(derived(128, 'A128GCM', 'Alice', 'Bob')).toBe(DERIVED_KEY);
    for (const other of [derived(128, 'A128GCM', 'Bob', 'Alice'), derived(128, 'A192GCM', 'Alice', 'Bob'), derived(256, 'A128GCM', 'Alice', 'Bob'), derived(128, 'A128GCM', 'Alice', '')]) {
      expect(other).not.toBe(DERIVED_KEY);
    }
  });

  it("decryptJwe uses that key for the appendix header and Bob's key", () => {
    expect([Buffer.from('QWxpY2U', 'base64url').toString(), Buffer.from('Qm9i', 'base64url').toString()]).toEqual(['Alice', 'Bob']);
    const jwe = gcmJwe({ alg: 'ECDH-ES', enc: 'A128GCM', apu: 'QWxpY2U', apv: 'Qm9i', epk: ALICE_EPK }, Buffer.alloc(0), Buffer.from(DERIVED_KEY, 'base64url'));
    expect(decrypt(jwe, recipient(bobKey)).toString('utf8')).toBe(PLAINTEXT);
  });
});

describe('decryptContent against RFC 7518 Appendix B (AES_CBC_HMAC_SHA2 test cases)', () => {
  // The same P, IV and A in B.1, B.2 and B.3; K, E and T differ.
  const P = 'A cipher system must not be required to be secret, and it must be able to fall into the hands of the enemy without inconvenience';
  const IV = Buffer.from('1af38c2dc2b96ffdd86694092341bc04', 'hex');
  const A = Buffer.from('The second principle of Auguste Kerckhoffs');
  const VECTORS = [
    {
      section: 'B.1',
      enc: 'A128CBC-HS256',
      K: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
      E:
        'c80edfa32ddf39d5ef00c0b468834279a2e46a1b8049f792f76bfe54b903a9c9a94ac9b47ad2655c5f10f9aef71427e2fc6f9b3f399a221489f16362c703233609d45ac69864e3321cf82935ac4096c8' +
        '6e133314c54019e8ca7980dfa4b9cf1b384c486f3a54c51078158ee5d79de59fbd34d848b3d69550a67646344427ade54b8851ffb598f7f80074b9473c82e2db',
      T: '652c3fa36b0a7c5b3219fab3a30bc1c4',
    },
    {
      section: 'B.2',
      enc: 'A192CBC-HS384',
      K: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f',
      E:
        'ea65da6b59e61edb419be62d19712ae5d303eeb50052d0dfd6697f77224c8edb000d279bdc14c1072654bd30944230c657bed4ca0c9f4a8466f22b226d1746214bf8cfc2400add9f5126e479663fc90b' +
        '3bed787a2f0ffcbf3904be2a641d5c2105bfe591bae23b1d7449e532eef60a9ac8bb6c6b01d35d49787bcd57ef484927f280adc91ac0c4e79c7b11efc60054e3',
      T: '8490ac0e58949bfe51875d733f93ac2075168039ccc733d7',
    },
    {
      section: 'B.3',
      enc: 'A256CBC-HS512',
      K: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f',
      E:
        '4affaaadb78c31c5da4b1b590d10ffbd3dd8d5d302423526912da037ecbcc7bd822c301dd67c373bccb584ad3e9279c2e6d12a1374b77f077553df829410446b36ebd97066296ae6427ea75c2e0846a1' +
        '1a09ccf5370dc80bfecbad28c73f09b3a3b75e662a2594410ae496b2e2e6609e31e6e02cc837f053d21f37ff4f51950bbe2638d09dd7a4930930806d0703b1f6',
      T: '4dd3b4c088a7f45c216839645b2012bf2e6269a8c56a816dbc1b267761955bc5',
    },
  ] as const;

  it.each(VECTORS)('$section ($enc): E and T decrypt to P', ({ enc, K, E, T }) => {
    expect(decryptContent(enc, Buffer.from(K, 'hex'), IV, Buffer.from(E, 'hex'), Buffer.from(T, 'hex'), A).toString('utf8')).toBe(P);
  });

  it.each(VECTORS)('$section ($enc): a changed T, A or K half is refused', ({ enc, K, E, T }) => {
    const key = Buffer.from(K, 'hex');
    const swapped = Buffer.concat([key.subarray(key.length / 2), key.subarray(0, key.length / 2)]);
    const attempts: (() => Buffer)[] = [
      () => decryptContent(enc, key, IV, Buffer.from(E, 'hex'), Buffer.from(flipBit(Buffer.from(T, 'hex').toString('base64url')), 'base64url'), A),
      () => decryptContent(enc, key, IV, Buffer.from(E, 'hex'), Buffer.from(T, 'hex'), Buffer.from('The first principle of Auguste Kerckhoffs')),
      () => decryptContent(enc, swapped, IV, Buffer.from(E, 'hex'), Buffer.from(T, 'hex'), A),
    ];
    for (const attempt of attempts) expect(attempt).toThrow(ContentDecryptionError);
  });
});

describe('decryptJwe refuses malformed and unsupported JWEs (JweInvalidError)', () => {
  let rsaJwe: string;
  let ecJwe: string;
  beforeAll(async () => {
    rsaJwe = await encryptTo(RSA[2048], 'RSA-OAEP-256', 'A256GCM');
    ecJwe = await encryptTo(EC['P-256'], 'ECDH-ES', 'A256GCM');
  });

  it('decrypts the unaltered JWEs these tests start from', () => {
    expect(decrypt(rsaJwe, RSA[2048]).toString('utf8')).toBe(PLAINTEXT);
    expect(decrypt(ecJwe, EC['P-256']).toString('utf8')).toBe(PLAINTEXT);
  });

  it('refuses a wrong number of parts', () => {
    const parts = rsaJwe.split('.');
    expectInvalid(() => decrypt(parts.slice(0, 4).join('.'), RSA[2048]), /has 5 parts, this one has 4/);
    expectInvalid(() => decrypt(`${rsaJwe}.AAAA`, RSA[2048]), /has 5 parts, this one has 6/);
    expectInvalid(() => decrypt(parts.slice(0, 3).join('.'), RSA[2048]), /this one has 3/);
  });

  it.each(PARTS)('refuses a JWE whose %s is not base64url', (name) => {
    const index = PARTS.indexOf(name);
    const part = rsaJwe.split('.')[index]!;
    for (const bad of [`${part.slice(0, 4)}+${part.slice(5)}`, `${part.slice(0, 4)}/${part.slice(5)}`, `${part}==`, `${part.slice(0, 4)} ${part.slice(5)}`]) {
      expectInvalid(() => decrypt(withPart(rsaJwe, index, bad), RSA[2048]), `the ${name} is not base64url`);
    }
  });

  it('refuses a segment whose length encodes nothing (1 mod 4), as jose does', () => {
    // Buffer.from drops the lone character: "A" would pass as an empty encrypted key.
    expectInvalid(() => decrypt(withPart(ecJwe, 1, 'A'), EC['P-256']), 'the encrypted key is not base64url');
    const iv = ecJwe.split('.')[2]!;
    expectInvalid(() => decrypt(withPart(ecJwe, 2, `${iv}A`), EC['P-256']), 'the iv is not base64url');
  });

  it('refuses a header that is not JSON, or not a JSON object', () => {
    const withRawHeader = (text: string): string => withPart(rsaJwe, 0, Buffer.from(text).toString('base64url'));
    expectInvalid(() => decrypt(withRawHeader('{"alg":"RSA-OAEP-256","enc":"A256GCM"'), RSA[2048]), /protected header is not JSON/);
    expectInvalid(() => decrypt(withRawHeader('alg=RSA-OAEP-256'), RSA[2048]), /protected header is not JSON/);
    for (const notObject of ['null', '[]', '["RSA-OAEP-256"]', '"RSA-OAEP-256"', '42', 'true']) {
      expectInvalid(() => decrypt(withRawHeader(notObject), RSA[2048]), /protected header is not a JSON object/);
    }
  });

  it.each(['RSA1_5', 'dir', 'A128KW', 'A256GCMKW', 'ECDH-ES+A128KW', 'PBES2-HS256+A128KW', 'none', 'rsa-oaep', 42])('refuses alg %p', (alg) => {
    expectInvalid(() => decrypt(withHeader(rsaJwe, { ...headerOf(rsaJwe), alg }), RSA[2048]), `alg ${JSON.stringify(alg)} is not accepted`);
  });

  it('refuses a header without alg', () => {
    expectInvalid(() => decrypt(withHeader(rsaJwe, without(headerOf(rsaJwe), 'alg')), RSA[2048]), /alg undefined is not accepted/);
  });

  it.each(['A128CBC', 'A256CTR', 'none', 'a256gcm', 'A512GCM', null])('refuses enc %p', (enc) => {
    expectInvalid(() => decrypt(withHeader(rsaJwe, { ...headerOf(rsaJwe), enc }), RSA[2048]), `enc ${JSON.stringify(enc)} is not supported`);
  });

  it('refuses zip and crit, which it does not implement', () => {
    expectInvalid(() => decrypt(withHeader(rsaJwe, { ...headerOf(rsaJwe), zip: 'DEF' }), RSA[2048]), /zip/);
    expectInvalid(() => decrypt(withHeader(rsaJwe, { ...headerOf(rsaJwe), crit: ['exp'], exp: 1 }), RSA[2048]), /crit header parameters are not supported/);
    expectInvalid(() => decrypt(withHeader(rsaJwe, { ...headerOf(rsaJwe), crit: [] }), RSA[2048]), /crit/);
  });

  it.each([42, null, ['kid'], { kid: 'x' }, true])('refuses kid %p (not a string)', (kid) => {
    expectInvalid(() => decrypt(withHeader(rsaJwe, { ...headerOf(rsaJwe), kid }), RSA[2048]), /kid must be a string/);
  });

  it('refuses an alg outside the list it is given, before the token is asked', () => {
    const port = new NodeKeyDecryption(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    expectInvalid(() => decrypt(rsaJwe, RSA[2048], { algorithms: ['RSA-OAEP'], port }), /alg RSA-OAEP-256 is not accepted for this key \(RSA-OAEP\)/);
    expectInvalid(() => decrypt(ecJwe, EC['P-256'], { algorithms: ['RSA-OAEP', 'RSA-OAEP-256'], port }), /alg ECDH-ES is not accepted for this key/);
    expect(port.calls).toEqual({ rsaOaepDecrypt: 0, ecdhSharedSecret: 0 });
  });

  it('refuses an RSA alg with an EC key, and ECDH-ES with an RSA key', () => {
    expectInvalid(() => decrypt(rsaJwe, EC['P-256']), /alg RSA-OAEP-256 needs an RSA key/);
    expectInvalid(() => decrypt(ecJwe, RSA[2048]), /alg ECDH-ES needs an EC key/);
  });

  it('refuses RSA-OAEP without an encrypted key', () => {
    expectInvalid(() => decrypt(withPart(rsaJwe, 1, ''), RSA[2048]), /alg RSA-OAEP-256 needs an encrypted key/);
  });

  it('refuses ECDH-ES with an encrypted key', () => {
    expectInvalid(() => decrypt(withPart(ecJwe, 1, rsaJwe.split('.')[1]!), EC['P-256']), /ECDH-ES carries no encrypted key/);
    expectInvalid(() => decrypt(withPart(ecJwe, 1, 'AA'), EC['P-256']), /ECDH-ES carries no encrypted key/);
  });

  describe('the ephemeral key (epk)', () => {
    const epkOf = (jwe: string): Record<string, unknown> => headerOf(jwe).epk as Record<string, unknown>;
    const withEpk = (jwe: string, epk: unknown): string => withHeader(jwe, { ...headerOf(jwe), epk });

    it('refuses ECDH-ES without an epk, or with one that is not an object', () => {
      expectInvalid(() => decrypt(withHeader(ecJwe, without(headerOf(ecJwe), 'epk')), EC['P-256']), /ECDH-ES needs an epk header parameter/);
      for (const epk of [null, 'epk', 42]) expectInvalid(() => decrypt(withEpk(ecJwe, epk), EC['P-256']), /needs an epk/);
    });

    it('refuses an epk on another curve or of another key type', async () => {
      const p384Epk = epkOf(await encryptTo(EC['P-384'], 'ECDH-ES', 'A256GCM'));
      expectInvalid(() => decrypt(withEpk(ecJwe, p384Epk), EC['P-256']), /epk must be an EC key on P-256/);
      expectInvalid(() => decrypt(withEpk(ecJwe, { ...epkOf(ecJwe), crv: 'P-384' }), EC['P-256']), /epk must be an EC key on P-256/);
      expectInvalid(() => decrypt(withEpk(ecJwe, { ...epkOf(ecJwe), kty: 'OKP' }), EC['P-256']), /epk must be an EC key on P-256/);
      expectInvalid(() => decrypt(withEpk(ecJwe, RSA[2048].publicJwk), EC['P-256']), /epk must be an EC key on P-256/);
    });

    it('refuses coordinates longer than the curve size, missing or not base64url', async () => {
      const epk = epkOf(ecJwe);
      const x = Buffer.from(epk.x as string, 'base64url');
      const coordinates = [
        { x: Buffer.concat([Buffer.from([0]), x]).toString('base64url') },
        { y: Buffer.concat([Buffer.from(epk.y as string, 'base64url'), Buffer.from([0])]).toString('base64url') },
        { x: `${(epk.x as string).slice(0, 10)}+${(epk.x as string).slice(11)}` },
        { y: undefined },
        { x: 42 },
        { x: '' },
      ];
      for (const change of coordinates) expectInvalid(() => decrypt(withEpk(ecJwe, { ...epk, ...change }), EC['P-256']), /epk coordinates must be 32 bytes, base64url/);
      // The P-521 coordinates are 66 bytes: 67 is refused, even when the extra byte is a zero.
      const p521Jwe = await encryptTo(EC['P-521'], 'ECDH-ES', 'A128GCM');
      const y = Buffer.concat([Buffer.from([0]), Buffer.from(epkOf(p521Jwe).y as string, 'base64url')]).toString('base64url');
      expectInvalid(() => decrypt(withEpk(p521Jwe, { ...epkOf(p521Jwe), y }), EC['P-521']), /epk coordinates must be 66 bytes/);
    });

    it.each(CURVES)('refuses an epk off %s (y with a bit flipped) without giving it to the token', async (crv) => {
      const jwe = await encryptTo(EC[crv], 'ECDH-ES', 'A256GCM');
      const epk = epkOf(jwe);
      const port = new NodeKeyDecryption(generateKeyPairSync('ec', { namedCurve: crv }).privateKey);
      expectInvalid(() => decrypt(withEpk(jwe, { ...epk, y: flipBit(epk.y as string) }), EC[crv], { port }), `epk is not a point on ${crv}`);
      expect(port.calls.ecdhSharedSecret).toBe(0);
      // The same port is asked for a point on the curve (it is the wrong private key, so the tag then fails).
      expectFailed(() => decrypt(jwe, EC[crv], { port }));
      expect(port.calls.ecdhSharedSecret).toBe(1);
    });

    it('refuses apu or apv that is not base64url', () => {
      expectInvalid(() => decrypt(withHeader(ecJwe, { ...headerOf(ecJwe), apu: 'QWxp+2U' }), EC['P-256']), /apu must be base64url/);
      expectInvalid(() => decrypt(withHeader(ecJwe, { ...headerOf(ecJwe), apv: 42 }), EC['P-256']), /apv must be base64url/);
    });
  });

  it('refuses a JWE over maxBytes, and takes one of exactly maxBytes', () => {
    expectInvalid(() => decrypt(rsaJwe, RSA[2048], { maxBytes: rsaJwe.length - 1 }), `the JWE is over ${rsaJwe.length - 1} bytes`);
    expect(decrypt(rsaJwe, RSA[2048], { maxBytes: rsaJwe.length }).toString('utf8')).toBe(PLAINTEXT);
  });
});

describe('decryptJwe gives one JweDecryptionFailedError for anything that depends on the key or the ciphertext', () => {
  const jwes: Record<string, string> = {};
  beforeAll(async () => {
    jwes['RSA-OAEP-256 / A256GCM'] = await encryptTo(RSA[2048], 'RSA-OAEP-256', 'A256GCM');
    jwes['RSA-OAEP / A128CBC-HS256'] = await encryptTo(RSA[2048], 'RSA-OAEP', 'A128CBC-HS256');
    jwes['ECDH-ES / A256GCM'] = await encryptTo(EC['P-256'], 'ECDH-ES', 'A256GCM');
    jwes['ECDH-ES / A256CBC-HS512'] = await encryptTo(EC['P-384'], 'ECDH-ES', 'A256CBC-HS512');
  });
  const to = (name: string): Recipient => (name.startsWith('RSA') ? RSA[2048] : name.includes('HS512') ? EC['P-384'] : EC['P-256']);
  const names = ['RSA-OAEP-256 / A256GCM', 'RSA-OAEP / A128CBC-HS256', 'ECDH-ES / A256GCM', 'ECDH-ES / A256CBC-HS512'];

  it.each(names)('%s: decrypts untouched', (name) => {
    expect(decrypt(jwes[name]!, to(name)).toString('utf8')).toBe(PLAINTEXT);
  });

  it.each(['RSA-OAEP-256 / A256GCM', 'RSA-OAEP / A128CBC-HS256'])('%s: a bit flipped in the encrypted key', (name) => {
    for (const byte of [0, 100, -1]) expectFailed(() => decrypt(withPart(jwes[name]!, 1, flipBit(jwes[name]!.split('.')[1]!, byte)), to(name)));
  });

  it.each(names.flatMap((name) => (['iv', 'ciphertext', 'tag'] as const).map((part) => [name, part] as const)))('%s: a bit flipped in the %s', (name, part) => {
    expectFailed(() => decrypt(withFlippedPart(jwes[name]!, PARTS.indexOf(part)), to(name)));
  });

  it.each(names)('%s: a tag or iv of another length', (name) => {
    const [, , iv, , tag] = jwes[name]!.split('.') as [string, string, string, string, string];
    const shorter = (part: string): string => Buffer.from(part, 'base64url').subarray(1).toString('base64url');
    expectFailed(() => decrypt(withPart(jwes[name]!, 4, shorter(tag)), to(name)));
    expectFailed(() => decrypt(withPart(jwes[name]!, 2, shorter(iv)), to(name)));
    expectFailed(() => decrypt(withPart(jwes[name]!, 4, ''), to(name)));
  });

  it.each(names)('%s: the protected header re-encoded (the AAD changes)', (name) => {
    const header = headerOf(jwes[name]!);
    const reordered = Object.fromEntries(Object.entries(header).reverse());
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(header));
    expectFailed(() => decrypt(withHeader(jwes[name]!, reordered), to(name)));
    expectFailed(() => decrypt(withHeader(jwes[name]!, { ...header, typ: 'JWE' }), to(name)));
  });

  it('another private key than the one the JWE was made for', () => {
    const otherRsa = new NodeKeyDecryption(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    const otherEc = new NodeKeyDecryption(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    expectFailed(() => decrypt(jwes['RSA-OAEP-256 / A256GCM']!, RSA[2048], { port: otherRsa }));
    expectFailed(() => decrypt(jwes['ECDH-ES / A256GCM']!, EC['P-256'], { port: otherEc }));
  });

  it('a CEK of the wrong length for enc (16 bytes for A256GCM)', () => {
    const port: KeyDecryption = {
      rsaOaepDecrypt: (hash, encryptedKey) => RSA[2048].port.rsaOaepDecrypt(hash, encryptedKey).subarray(0, 16),
      ecdhSharedSecret: () => Buffer.alloc(0),
    };
    expect(RSA[2048].port.rsaOaepDecrypt('sha256', Buffer.from(jwes['RSA-OAEP-256 / A256GCM']!.split('.')[1]!, 'base64url'))).toHaveLength(32);
    expectFailed(() => decrypt(jwes['RSA-OAEP-256 / A256GCM']!, RSA[2048], { port }));
  });

  it('a CEK the sender chose of another length than enc says (32 bytes under A128GCM), even with a valid tag', () => {
    const wrap = (cek: Buffer): Buffer => publicEncrypt({ key: RSA[2048].publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, cek);
    const header = { alg: 'RSA-OAEP', enc: 'A128GCM' };
    expect(decrypt(gcmJwe(header, wrap(Buffer.alloc(16, 7)), Buffer.alloc(16, 7)), RSA[2048]).toString('utf8')).toBe(PLAINTEXT);
    expectFailed(() => decrypt(gcmJwe(header, wrap(Buffer.alloc(32, 7)), Buffer.alloc(32, 7)), RSA[2048]));
  });

  it('a port that throws a plain Error (the token refused the ciphertext)', () => {
    const port: KeyDecryption = {
      rsaOaepDecrypt: () => {
        throw new Error('CKR_ENCRYPTED_DATA_INVALID');
      },
      ecdhSharedSecret: () => {
        throw new Error('CKR_DOMAIN_PARAMS_INVALID');
      },
    };
    expectFailed(() => decrypt(jwes['RSA-OAEP-256 / A256GCM']!, RSA[2048], { port }));
    expectFailed(() => decrypt(jwes['ECDH-ES / A256GCM']!, EC['P-256'], { port }));
  });

  it.each([
    ['MechanismNotSupportedError', new MechanismNotSupportedError('the token refused RSA-OAEP-256', 'CKR_MECHANISM_PARAM_INVALID')],
    ['TokenOperationError', new TokenOperationError('the token failed', 'CKR_DEVICE_ERROR')],
  ])('lets an HsmError from the port (%s) through unchanged', (_name, refusal) => {
    const port: KeyDecryption = {
      rsaOaepDecrypt: () => {
        throw refusal;
      },
      ecdhSharedSecret: () => {
        throw refusal;
      },
    };
    expect(thrownBy(() => decrypt(jwes['RSA-OAEP-256 / A256GCM']!, RSA[2048], { port }))).toBe(refusal);
    expect(thrownBy(() => decrypt(jwes['ECDH-ES / A256GCM']!, EC['P-256'], { port }))).toBe(refusal);
  });
});

describe("partners' JOSE libraries: deviations from RFC 7518 that are accepted, and reported", () => {
  type Epk = { kty: string; crv: string; x: string; y: string };
  /** Leading zero bytes dropped, as Authlib 1.2 writes coordinates (int_to_base64). */
  const unpadded = (coordinate: string): string => {
    const bytes = Buffer.from(coordinate, 'base64url');
    const first = bytes.findIndex((byte) => byte !== 0);
    return bytes.subarray(first === -1 ? bytes.length - 1 : first).toString('base64url');
  };
  /** An ephemeral key whose x starts with a zero byte (1 in 256 on P-256, 1 in 2 on P-521). */
  function ephemeralWithShortX(crv: EcCurve): KeyObject {
    for (;;) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: crv });
      if (Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url')[0] === 0) return privateKey;
    }
  }
  /** An ECDH-ES JWE from `ephemeral`, its epk written by `write` (as the library would), with an IV of `ivBytes`. */
  function ecdhJwe(to: Recipient, ephemeral: KeyObject, write: (epk: Epk) => unknown, options: { enc?: 'A128GCM' | 'A256GCM'; ivBytes?: number } = {}): string {
    const enc = options.enc ?? 'A256GCM';
    const epk = createPublicKey(ephemeral).export({ format: 'jwk' }) as Epk;
    const cek = concatKdf(diffieHellman({ privateKey: ephemeral, publicKey: to.publicKey }), enc === 'A128GCM' ? 128 : 256, enc, Buffer.alloc(0), Buffer.alloc(0));
    return gcmJwe({ alg: 'ECDH-ES', enc, kid: 'partner-key', epk: write({ kty: epk.kty, crv: epk.crv, x: epk.x, y: epk.y }) }, Buffer.alloc(0), cek, options.ivBytes);
  }
  const asSent = (epk: Epk): Epk => epk;
  const authlib = (epk: Epk): Epk => ({ ...epk, x: unpadded(epk.x), y: unpadded(epk.y) });
  const cryptJwt = (epk: Epk): string => JSON.stringify(epk);

  it('a conforming sender (jose) has no deviation', async () => {
    for (const jwe of [await encryptTo(EC['P-521'], 'ECDH-ES', 'A256GCM'), await encryptTo(RSA[2048], 'RSA-OAEP', 'A128GCM'), await encryptTo(RSA[2048], 'RSA-OAEP', 'A128CBC-HS256')]) {
      const to = headerOf(jwe).alg === 'ECDH-ES' ? EC['P-521'] : RSA[2048];
      expect(decrypted(jwe, to)).toEqual({ plaintext: Buffer.from(PLAINTEXT), deviations: [] });
    }
  });

  it.each(CURVES)('on %s, coordinates without their leading zero bytes are padded back, the point checked, the deviation reported', (crv) => {
    const ephemeral = ephemeralWithShortX(crv);
    const jwe = ecdhJwe(EC[crv], ephemeral, authlib);
    const sentX = (headerOf(jwe).epk as Epk).x;
    expect(Buffer.from(sentX, 'base64url').length).toBeLessThan(Buffer.from((createPublicKey(ephemeral).export({ format: 'jwk' }) as Epk).x, 'base64url').length);
    expect(decrypted(jwe, EC[crv])).toEqual({ plaintext: Buffer.from(PLAINTEXT), deviations: ['epk-coordinates-unpadded'] });
    // The same key written in full is no deviation.
    expect(decrypted(ecdhJwe(EC[crv], ephemeral, asSent), EC[crv]).deviations).toEqual([]);
  });

  it('a short coordinate that is not the point once padded is refused as off the curve, without reaching the token', () => {
    const ephemeral = ephemeralWithShortX('P-256');
    const port = new NodeKeyDecryption(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    const wrongX = (epk: Epk): Epk => ({ ...epk, x: Buffer.from(unpadded(epk.x), 'base64url').subarray(1).toString('base64url') });
    expectInvalid(() => decrypted(ecdhJwe(EC['P-256'], ephemeral, wrongX), EC['P-256'], { port }), 'epk is not a point on P-256');
    expect(port.calls.ecdhSharedSecret).toBe(0);
  });

  it('an epk sent as a string holding its JSON (Crypt::JWT) is read as that JWK, and reported', () => {
    const jwe = ecdhJwe(EC['P-384'], generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, cryptJwt);
    expect(typeof headerOf(jwe).epk).toBe('string');
    expect(decrypted(jwe, EC['P-384'])).toEqual({ plaintext: Buffer.from(PLAINTEXT), deviations: ['epk-as-json-string'] });
  });

  it('a string epk gets every check an object epk gets', () => {
    const ecJwe = ecdhJwe(EC['P-256'], generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, asSent);
    const epk = headerOf(ecJwe).epk as Epk;
    const withEpk = (value: unknown): string => withHeader(ecJwe, { ...headerOf(ecJwe), epk: value });
    for (const notJwk of ['', 'epk', '[]', 'null', '42', '"{}"', JSON.stringify(epk).slice(1)]) expectInvalid(() => decrypt(withEpk(notJwk), EC['P-256']), /ECDH-ES needs an epk/);
    expectInvalid(() => decrypt(withEpk(JSON.stringify({ ...epk, crv: 'P-384' })), EC['P-256']), 'epk must be an EC key on P-256');
    expectInvalid(() => decrypt(withEpk(JSON.stringify({ ...epk, y: flipBit(epk.y) })), EC['P-256']), 'epk is not a point on P-256');
    const tooLong = Buffer.concat([Buffer.from([0]), Buffer.from(epk.x, 'base64url')]).toString('base64url');
    expectInvalid(() => decrypt(withEpk(JSON.stringify({ ...epk, x: tooLong })), EC['P-256']), 'epk coordinates must be 32 bytes, base64url');
  });

  it.each([16, 13, 32, 128])('an AES-GCM IV of %d bytes is accepted, and reported', (ivBytes) => {
    const jwe = ecdhJwe(EC['P-256'], generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, asSent, { enc: 'A128GCM', ivBytes });
    expect(decrypted(jwe, EC['P-256'])).toEqual({ plaintext: Buffer.from(PLAINTEXT), deviations: ['gcm-iv-not-96-bits'] });
  });

  it('python-jose 3.3 (RSA-OAEP, a 128-bit GCM IV) is decrypted, and reported', () => {
    const cek = randomBytes(32);
    const encryptedKey = publicEncrypt({ key: RSA[2048].publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, cek);
    expect(decrypted(gcmJwe({ alg: 'RSA-OAEP', enc: 'A256GCM', kid: 'partner-key' }, encryptedKey, cek, 16), RSA[2048]).deviations).toEqual(['gcm-iv-not-96-bits']);
  });

  it.each([1, 8, 11, 129, 256])('an AES-GCM IV of %d bytes (under 96 bits, or over what OpenSSL takes) is the one decryption error', (ivBytes) => {
    // Under 96 bits the IV is made here, since node:crypto refuses none from 1 byte; over 128 bytes it cannot encrypt at all.
    const ephemeral = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const jwe = ecdhJwe(EC['P-256'], ephemeral, asSent, { ivBytes: Math.min(ivBytes, 128) });
    const iv = ivBytes <= 128 ? jwe.split('.')[2]! : Buffer.concat([Buffer.from(jwe.split('.')[2]!, 'base64url'), randomBytes(ivBytes - 128)]).toString('base64url');
    expect(Buffer.from(iv, 'base64url')).toHaveLength(ivBytes);
    expectFailed(() => decrypted(withPart(jwe, 2, iv), EC['P-256']));
  });

  it('an AES-CBC IV is 128 bits exactly', async () => {
    const jwe = await encryptTo(RSA[2048], 'RSA-OAEP', 'A128CBC-HS256');
    const iv = Buffer.from(jwe.split('.')[2]!, 'base64url');
    expectFailed(() => decrypted(withPart(jwe, 2, Buffer.concat([iv, Buffer.from([0])]).toString('base64url')), RSA[2048]));
  });

  it('all three at once are all reported; with a tampered tag it is the one decryption error, and nothing is reported', () => {
    const jwe = ecdhJwe(EC['P-521'], ephemeralWithShortX('P-521'), (epk) => cryptJwt(authlib(epk)), { ivBytes: 16 });
    expect(decrypted(jwe, EC['P-521'])).toEqual({ plaintext: Buffer.from(PLAINTEXT), deviations: ['epk-coordinates-unpadded', 'epk-as-json-string', 'gcm-iv-not-96-bits'] });
    expectFailed(() => decrypted(withFlippedPart(jwe, PARTS.indexOf('tag')), EC['P-521']));
  });
});
