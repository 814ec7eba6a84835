#!/usr/bin/python3
"""An independent check of Vouch's attestation result tokens with PyJWT
(Debian's python3-jwt), used by tests/e2e/results_test.cc.

  pyjwt_check.py verify JWKS TOKEN_FILE   -> the claims as JSON, exit 0;
                                             "REFUSED <error>", exit 3
  pyjwt_check.py forge KEY_PEM TOKEN_FILE -> the token's claims re-signed
                                             ES256 with KEY_PEM under the
                                             original kid (an impostor)
"""
import json
import sys

import jwt


def verify(jwks_path, token_path):
    with open(jwks_path) as f:
        keys = jwt.PyJWKSet.from_dict(json.load(f))
    with open(token_path) as f:
        token = f.read().strip()
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        matching = [k for k in keys.keys if k.key_id == kid]
        if not matching:
            raise jwt.InvalidKeyError("no key with kid %r" % kid)
        claims = jwt.decode(token, key=matching[0].key, algorithms=["ES256"],
                            options={"require": ["exp", "iat"]})
    except jwt.PyJWTError as e:
        print("REFUSED %s: %s" % (type(e).__name__, e))
        return 3
    print(json.dumps(claims))
    return 0


def forge(key_path, token_path):
    with open(key_path) as f:
        key = f.read()
    with open(token_path) as f:
        token = f.read().strip()
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    print(jwt.encode(claims, key, algorithm="ES256",
                     headers={"kid": header["kid"]}))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("verify", "forge"):
        print(__doc__)
        sys.exit(2)
    sys.exit((verify if sys.argv[1] == "verify" else forge)(*sys.argv[2:]))
