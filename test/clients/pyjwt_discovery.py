#!/usr/bin/python3
"""A Python partner that knows only our issuer, as PyJWT users write it (PyJWT has no discovery).

    /usr/bin/python3 test/clients/pyjwt_discovery.py --issuer=ISSUER --audience=AUD --token=JWT

Fetches ISSUER + /.well-known/openid-configuration (OIDC Discovery 1.0, section 4), refuses a
document whose "issuer" is not ISSUER exactly (section 4.3), then verifies the token with PyJWT's
PyJWKClient on the document's jwks_uri, allowing only the document's signing algorithms.
Prints {"ok": true, "kid": K, "claims": {...}, "jwks_uri": U, "algorithms": [...]} or
{"ok": false, "error": "Class: message"}; exit 0 either way.
"""
import argparse
import json
import urllib.request

import jwt


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--issuer', required=True)
    parser.add_argument('--audience', required=True)
    parser.add_argument('--token', required=True)
    args = parser.parse_args()
    try:
        url = args.issuer.rstrip('/') + '/.well-known/openid-configuration'
        with urllib.request.urlopen(url, timeout=10) as response:
            document = json.loads(response.read().decode('utf-8'))
        if document.get('issuer') != args.issuer:
            raise ValueError('discovery issuer %r is not %r' % (document.get('issuer'), args.issuer))
        algorithms = document['id_token_signing_alg_values_supported']
        client = jwt.PyJWKClient(document['jwks_uri'])
        key = client.get_signing_key_from_jwt(args.token)
        claims = jwt.decode(args.token, key.key, algorithms=algorithms, audience=args.audience, issuer=document['issuer'])
        print(json.dumps({'ok': True, 'kid': key.key_id, 'claims': claims, 'jwks_uri': document['jwks_uri'], 'algorithms': algorithms}))
    except Exception as error:  # noqa: BLE001 -- the test reads the class and message
        print(json.dumps({'ok': False, 'error': '%s: %s' % (type(error).__name__, error)}))


if __name__ == '__main__':
    main()
