/**
 * A partner's Node service using auth0 jwks-rsa, run as its own process: jwks-rsa is CommonJS and
 * requires jose 6 (ESM), which Node (20.19 and later, 24) loads natively but jest's module system cannot.
 *
 *   node dist/test/clients/jwks-rsa-verify.js <jwks-or-jwk-url> <token> [--single-key]
 *
 * Prints {"kid", "verified", "signingKids"} as JSON; exits 1 with {"error"} when verification fails.
 */
import { decodeProtectedHeader, jwtVerify } from 'jose';
import jwksRsa from 'jwks-rsa';
import { createPublicKey } from 'node:crypto';

const [uri = '', token = '', mode] = process.argv.slice(2);
try {
  const { kid } = decodeProtectedHeader(token);
  const single = mode === '--single-key';
  const client = jwksRsa({
    jwksUri: uri,
    cache: false,
    rateLimit: false,
    // jwk-get serves one JWK; jwks-rsa's documented fetcher hook wraps it into a set.
    ...(single ? { fetcher: async (url: string) => ({ keys: [(await (await fetch(url)).json()) as jwksRsa.JSONWebKey] }) } : {}),
  });
  const signingKey = await client.getSigningKey(kid);
  await jwtVerify(token, createPublicKey(signingKey.getPublicKey()));
  const signingKids = single ? [kid] : (await client.getSigningKeys()).map((key) => key.kid);
  console.log(JSON.stringify({ kid, verified: true, signingKids }));
} catch (error) {
  console.log(JSON.stringify({ error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) }));
  process.exitCode = 1;
}
