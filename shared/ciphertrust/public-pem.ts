import { createPublicKey, type KeyObject } from 'node:crypto';

export type PemProblem = 'not_public_pem' | 'private_key_material' | 'unparseable';

export type ParsedPem = { readonly ok: true; readonly key: KeyObject } | { readonly ok: false; readonly problem: PemProblem };

const PUBLIC_PEM = /^-----BEGIN (PUBLIC KEY|RSA PUBLIC KEY)-----\r?\n[A-Za-z0-9+/=\r\n]+-----END \1-----\s*$/;

/**
 * Reads CM's `publickey` PEM: SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`), exactly
 * one block. Node would derive a public key from a private PEM too; that is refused here and
 * reported, because private material in a public field means something upstream is badly wrong.
 */
export function parsePublicPem(pem: string): ParsedPem {
  const text = pem.trim();
  if (/PRIVATE KEY-----/.test(text)) return { ok: false, problem: 'private_key_material' };
  if (!PUBLIC_PEM.test(text + '\n')) return { ok: false, problem: 'not_public_pem' };
  try {
    const key = createPublicKey(text);
    return key.type === 'public' ? { ok: true, key } : { ok: false, problem: 'unparseable' };
  } catch {
    return { ok: false, problem: 'unparseable' };
  }
}
