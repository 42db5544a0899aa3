import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { CmKey } from '../../shared/ciphertrust/cm-key.js';

/** A CM key resource as the reader yields it, with real key material generated for the test. */
export interface CmKeyFixture {
  readonly key: CmKey;
  readonly publicKey: KeyObject;
}

export interface FixtureOptions {
  readonly usageMask?: number;
  readonly state?: string;
  readonly labels?: Record<string, string>;
  readonly name?: string;
  readonly version?: number;
  readonly deactivationDate?: string;
  readonly protectStopDate?: string;
  readonly updatedAt?: string;
  readonly objectType?: string;
}

export const SIGN_VERIFY = 1 | 2;
export const ENCRYPT_DECRYPT = 4 | 8;

export function rsaCmKey(options: FixtureOptions & { bits?: number; format?: 'pkcs1' | 'spki' } = {}): CmKeyFixture {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: options.bits ?? 2048 });
  const pem = publicKey.export({ type: options.format ?? 'pkcs1', format: 'pem' }).toString();
  return { key: cmKey('RSA', pem, { size: options.bits ?? 2048 }, options), publicKey };
}

export function ecCmKey(curve: string, options: FixtureOptions = {}): CmKeyFixture {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { key: cmKey('EC', pem, { curveid: curve }, options), publicKey };
}

export function cmKey(algorithm: string, publickey: string | undefined, extra: Partial<CmKey>, options: FixtureOptions = {}): CmKey {
  return {
    id: randomBytes(32).toString('hex'),
    name: options.name ?? `key-${randomBytes(3).toString('hex')}`,
    version: options.version ?? 0,
    algorithm,
    size: undefined,
    curveid: undefined,
    usageMask: options.usageMask ?? SIGN_VERIFY,
    objectType: options.objectType ?? 'Private Key',
    state: options.state ?? 'Active',
    labels: options.labels ?? { jwks: 'publish' },
    publickey,
    updatedAt: options.updatedAt ?? '2026-11-20T10:00:00.000Z',
    deactivationDate: options.deactivationDate,
    protectStopDate: options.protectStopDate,
    ...extra,
  };
}
