#!/usr/bin/python3
"""A partner's Python service, long-running so its key caches behave as in real life.

    /usr/bin/python3 test/clients/python_partner.py --jwks-url URL --lifespan SECONDS

Holds for its whole life one PyJWT PyJWKClient (cache_jwk_set=True, lifespan=SECONDS) and one
jwcrypto JWKSet cache with the same lifespan (jwcrypto has no fetcher: urllib does it, refetching
when the set is older than the lifespan, and once more when a token names a kid it lacks).

Speaks JSON lines: one command per stdin line, one answer per stdout line. Every answer carries
the command's "id" when it had one, and "ok"; a failure is {"ok": false, "error": "Class: message"}.
  {"op": "verify", "client": "pyjwt"|"jwcrypto", "token": T, "algorithms": [...]?}
      -> {"ok": true, "kid": K, "claims": {...}}
  {"op": "load_set", "client": "pyjwt"|"jwcrypto"}  (fresh fetch; the verify caches are untouched)
      -> {"ok": true, "kids": [...], "count": N}; PyJWT: the keys its PyJWKSet kept (it drops
         keys whose alg is not a JWS alg), plus "signing_kids": those get_signing_keys() offers
  {"op": "encrypt", "client": "jwcrypto", "kid": K, "alg": A?, "enc": E?, "plaintext_b64": B}
      -> {"ok": true, "jwe": "<compact JWE>"}
  {"op": "quit"} or end of stdin -> exit 0
"""
import argparse
import base64
import json
import sys
import time
import urllib.request

import jwt
from jwcrypto import jwe as jc_jwe
from jwcrypto import jwk as jc_jwk
from jwcrypto import jwt as jc_jwt

ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512']


class CommandError(Exception):
    """A command the partner cannot run as written."""


def fetch_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode('utf-8')


class JwcryptoCache:
    """What a jwcrypto user writes around JWKSet: fetch, keep for lifespan, refetch on unknown kid."""

    def __init__(self, url, lifespan):
        self.url = url
        self.lifespan = lifespan
        self.keyset = None
        self.fetched_at = 0.0

    def fresh(self):
        return jc_jwk.JWKSet.from_json(fetch_json(self.url))

    def refetch(self):
        self.keyset = self.fresh()
        self.fetched_at = time.monotonic()
        return self.keyset

    def current(self):
        if self.keyset is None or time.monotonic() - self.fetched_at > self.lifespan:
            return self.refetch()
        return self.keyset


class Partner:
    def __init__(self, url, lifespan):
        self.url = url
        self.pyjwt = jwt.PyJWKClient(url, cache_keys=False, max_cached_keys=16, cache_jwk_set=True, lifespan=lifespan)
        self.jwcrypto = JwcryptoCache(url, lifespan)

    def verify(self, command):
        token = required(command, 'token')
        algorithms = command.get('algorithms')
        if client_of(command) == 'pyjwt':
            signing_key = self.pyjwt.get_signing_key_from_jwt(token)
            if not algorithms:
                alg = jwt.get_unverified_header(token).get('alg')
                algorithms = [alg] if alg in ASYMMETRIC_ALGS else ASYMMETRIC_ALGS
            claims = jwt.decode(token, signing_key.key, algorithms=algorithms, options={'verify_aud': False})
            return {'kid': signing_key.key_id, 'claims': claims}
        try:
            verified = jc_jwt.JWT(jwt=token, key=self.jwcrypto.current(), algs=algorithms)
        except jc_jwt.JWTMissingKey:
            verified = jc_jwt.JWT(jwt=token, key=self.jwcrypto.refetch(), algs=algorithms)
        return {'kid': json.loads(verified.header).get('kid'), 'claims': json.loads(verified.claims)}

    def load_set(self, command):
        if client_of(command) == 'pyjwt':
            # A client of its own: get_jwk_set(refresh=True) on the long-lived one would also reset
            # its cache (PyJWT writes every fetch through to the cache).
            key_set = jwt.PyJWKClient(self.url, cache_jwk_set=False).get_jwk_set(refresh=True)
            kids = [key.key_id for key in key_set.keys]
            # What get_signing_keys() would offer: use "sig" or none, and a kid.
            signing = [key.key_id for key in key_set.keys if key.public_key_use in ('sig', None) and key.key_id]
            return {'kids': kids, 'count': len(kids), 'signing_kids': signing}
        kids = [key.get('kid') for key in self.jwcrypto.fresh()]
        return {'kids': kids, 'count': len(kids)}

    def encrypt(self, command):
        if client_of(command) != 'jwcrypto':
            raise CommandError('encrypt is only offered by jwcrypto')
        kid = required(command, 'kid')
        key = self.jwcrypto.fresh().get_key(kid)
        if key is None:
            raise CommandError(f'no key with kid {kid!r} in the set')
        if key.get('use') != 'enc':
            raise CommandError(f'key {kid!r} has use {key.get("use")!r}, not "enc"')
        alg = command.get('alg') or key.get('alg')
        if not alg:
            raise CommandError(f'key {kid!r} has no alg and the command names none')
        plaintext = base64.b64decode(required(command, 'plaintext_b64'), validate=True)
        header = {'alg': alg, 'enc': command.get('enc') or 'A256GCM', 'kid': kid}
        token = jc_jwe.JWE(plaintext, protected=json.dumps(header))
        token.add_recipient(key)
        return {'jwe': token.serialize(compact=True)}


def required(command, name):
    value = command.get(name)
    if not isinstance(value, str) or value == '':
        raise CommandError(f'"{name}" must be a non-empty string')
    return value


def client_of(command):
    client = command.get('client')
    if client not in ('pyjwt', 'jwcrypto'):
        raise CommandError(f'"client" must be "pyjwt" or "jwcrypto", not {client!r}')
    return client


def describe(error):
    return f'{type(error).__name__}: {error}'


def answer(partner, line):
    try:
        command = json.loads(line)
    except ValueError as error:
        return {'ok': False, 'error': describe(error)}, False
    if not isinstance(command, dict):
        return {'ok': False, 'error': 'CommandError: a command is a JSON object'}, False
    reply = {'id': command['id']} if 'id' in command else {}
    op = command.get('op')
    if op == 'quit':
        return {**reply, 'ok': True}, True
    handler = {'verify': partner.verify, 'load_set': partner.load_set, 'encrypt': partner.encrypt}.get(op)
    try:
        if handler is None:
            raise CommandError(f'unknown op {op!r}')
        return {**reply, 'ok': True, **handler(command)}, False
    except Exception as error:  # every failure is an answer: the partner keeps running
        return {**reply, 'ok': False, 'error': describe(error)}, False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--jwks-url', required=True)
    parser.add_argument('--lifespan', type=float, default=300.0)
    options = parser.parse_args()
    partner = Partner(options.jwks_url, options.lifespan)
    for line in sys.stdin:
        if not line.strip():
            continue
        reply, done = answer(partner, line)
        sys.stdout.write(json.dumps(reply) + '\n')
        sys.stdout.flush()
        if done:
            break
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
