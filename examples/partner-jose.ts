// A partner in Node.js with jose: verify our JWTs, encrypt data for us.
//   JWKS_URL=https://jwks.bank.example/jwks node dist/examples/partner-jose.js verify <jwt>
//   JWKS_URL=... node dist/examples/partner-jose.js encrypt <text>   -> prints a compact JWE
import { CompactEncrypt, createRemoteJWKSet, importJWK, jwtVerify, type JSONWebKeySet } from 'jose';

const jwksUrl = new URL(process.env.JWKS_URL ?? 'http://127.0.0.1:8080/jwks');
const [command, argument = ''] = process.argv.slice(2);

if (command === 'verify') {
  // Cached; refetched for an unknown kid (at most every 30 s), so a newly published key is found.
  const keys = createRemoteJWKSet(jwksUrl);
  const { payload, protectedHeader } = await jwtVerify(argument, keys, { issuer: 'https://core.bank.example' });
  console.log(JSON.stringify({ kid: protectedHeader.kid, payload }));
} else if (command === 'encrypt') {
  // Encrypt to one of our encryption keys, with the algorithm it is published for, and name it.
  const set = (await (await fetch(jwksUrl)).json()) as JSONWebKeySet;
  const key = set.keys.find((candidate) => candidate.use === 'enc');
  if (key?.alg === undefined || key.kid === undefined) throw new Error('no encryption key published');
  const jwe = await new CompactEncrypt(new TextEncoder().encode(argument))
    .setProtectedHeader({ alg: key.alg, enc: 'A256GCM', kid: key.kid })
    .encrypt(await importJWK(key, key.alg));
  console.log(jwe);
} else {
  throw new Error('usage: partner-jose verify <jwt> | encrypt <text>');
}
