#!/usr/bin/python3
# A partner in Python with jwcrypto (Debian: python3-jwcrypto): encrypt data for us.
#   JWKS_URL=https://jwks.bank.example/jwks python3 partner_jwcrypto.py <text>   -> prints a compact JWE
import json, os, sys, urllib.request
from jwcrypto import jwe, jwk

with urllib.request.urlopen(os.environ.get("JWKS_URL", "http://127.0.0.1:8080/jwks"), timeout=10) as response:
    keys = jwk.JWKSet.from_json(response.read())
key = next(k for k in keys if k.get("use") == "enc")  # one of our encryption keys
token = jwe.JWE(sys.argv[1].encode(), protected=json.dumps({"alg": key.get("alg"), "enc": "A256GCM", "kid": key.key_id}))
token.add_recipient(key)
print(token.serialize(compact=True))
