#!/usr/bin/python3
# A partner in Python with PyJWT (Debian: python3-jwt): verify our JWTs.
#   JWKS_URL=https://jwks.bank.example/jwks python3 partner_pyjwt.py <jwt>
import json, os, sys
import jwt

client = jwt.PyJWKClient(os.environ.get("JWKS_URL", "http://127.0.0.1:8080/jwks"), lifespan=300)
token = sys.argv[1]
key = client.get_signing_key_from_jwt(token)  # by the token's kid; refetches for an unknown kid
claims = jwt.decode(token, key.key, algorithms=["RS256", "PS256", "ES256", "ES384"], issuer="https://core.bank.example")
print(json.dumps({"kid": key.key_id, "claims": claims}))
