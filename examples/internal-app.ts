// An internal app signs and decrypts through PKCS#11 only: the private keys never leave the HSM.
//   node dist/examples/internal-app.js sign <key label> <alg>     -> prints a JWT
//   node dist/examples/internal-app.js decrypt <key label> <jwe>  -> prints the plaintext
import { openHsm, tokenOptionsFromEnv } from '../hsm/index.js';
import type { SigningAlgorithm } from '../hsm/index.js';

const [command, label = '', argument = ''] = process.argv.slice(2);
// PKCS11_LIBRARY (libcadp_pkcs11.so in production), PKCS11_TOKEN_LABEL, PKCS11_PIN or PKCS11_PIN_FILE
const hsm = openHsm(tokenOptionsFromEnv());
try {
  if (command === 'sign') {
    // The kid in the header is the one /jwks publishes for this key (RFC 7638 thumbprint).
    const signer = await hsm.signer({ label, alg: argument as SigningAlgorithm });
    const now = Math.floor(Date.now() / 1000);
    console.log(await signer.signJwt({ iss: 'https://core.bank.example', sub: 'payment-7', iat: now, exp: now + 300 }));
  } else if (command === 'decrypt') {
    // Every version of the key under this label; the JWE's kid says which one.
    const inbound = await hsm.decrypter({ label, algorithms: ['RSA-OAEP', 'ECDH-ES'] });
    const { plaintext, kid, deviations } = await inbound.decrypt(argument);
    // Accepted departures from RFC 7518 (e.g. Authlib's short coordinates): tell the partner.
    if (deviations.length > 0) console.error(JSON.stringify({ msg: 'JWE deviates from RFC 7518', kid, deviations }));
    console.log(plaintext.toString('utf8'));
  } else {
    throw new Error('usage: internal-app sign <label> <alg> | decrypt <label> <jwe>');
  }
} finally {
  hsm.close();
}
