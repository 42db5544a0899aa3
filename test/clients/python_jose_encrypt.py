#!/usr/bin/python3
"""A partner encrypting to us with Authlib or python-jose, as Debian 12 ships them, used as their docs say.

    /usr/bin/python3 test/clients/python_jose_encrypt.py --library authlib|python-jose \
        --jwks-url URL --kid KID --alg ALG --enc ENC --count N --plaintext TEXT

Fetches the JWKS, takes the key with that kid, makes N compact JWEs with the library, and prints
one JSON line: {"library": L, "version": V, "jwes": [...]}. A failure exits non-zero with the
error on stderr.
"""
import argparse
import json
import urllib.request


def published_key(jwks_url, kid):
    with urllib.request.urlopen(jwks_url, timeout=10) as response:
        keys = json.loads(response.read().decode('utf-8'))['keys']
    for key in keys:
        if key.get('kid') == kid:
            return key
    raise SystemExit(f'no key with kid {kid} at {jwks_url}')


def authlib_encryptor(jwk, alg, enc):
    import authlib
    from authlib.jose import JsonWebEncryption, JsonWebKey
    key = JsonWebKey.import_key(jwk)
    header = {'alg': alg, 'enc': enc, 'kid': jwk['kid']}
    return authlib.__version__, lambda plaintext: JsonWebEncryption().serialize_compact(header, plaintext, key).decode('ascii')


def python_jose_encryptor(jwk, alg, enc):
    import jose
    from jose import jwe
    return jose.__version__, lambda plaintext: jwe.encrypt(plaintext, jwk, algorithm=alg, encryption=enc, kid=jwk['kid']).decode('ascii')


ENCRYPTORS = {'authlib': authlib_encryptor, 'python-jose': python_jose_encryptor}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--library', choices=sorted(ENCRYPTORS), required=True)
    parser.add_argument('--jwks-url', required=True)
    parser.add_argument('--kid', required=True)
    parser.add_argument('--alg', required=True)
    parser.add_argument('--enc', required=True)
    parser.add_argument('--count', type=int, default=1)
    parser.add_argument('--plaintext', required=True)
    args = parser.parse_args()
    version, encrypt = ENCRYPTORS[args.library](published_key(args.jwks_url, args.kid), args.alg, args.enc)
    plaintext = args.plaintext.encode('utf-8')
    print(json.dumps({'library': args.library, 'version': version, 'jwes': [encrypt(plaintext) for _ in range(args.count)]}))


if __name__ == '__main__':
    main()
