#!/usr/bin/python3
"""Writes the seeds of fuzz_action_notice (fuzz/corpus/action_notice/):
action notices signed with the test-only key seedgen/ear-key.pem (the key
of fuzz/fuzz_ear_token_jwks.inc, written by make_ear_seeds.py), addressed
to node-1 and valid at the target's fixed time, and a bare claims set.
Needs Debian's python3-jwt (PyJWT).

  fuzz/seedgen/make_notice_seeds.py
"""
import base64
import hashlib
import json
import os

import jwt
from jwt.algorithms import ECAlgorithm

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(HERE), "corpus", "action_notice")
NOW = 1_800_000_000  # fuzz_action_notice.cc kNow

with open(os.path.join(HERE, "ear-key.pem")) as f:
    key_pem = f.read()
private = ECAlgorithm(ECAlgorithm.SHA256).prepare_key(key_pem)
jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
canon = json.dumps({"crv": jwk["crv"], "kty": "EC", "x": jwk["x"],
                    "y": jwk["y"]}, separators=(",", ":"), sort_keys=True)
kid = base64.urlsafe_b64encode(
    hashlib.sha256(canon.encode()).digest()).rstrip(b"=").decode()


def notice(kind, subject):
    return {"jti": "812-3", "vouch.kind": kind, "sub": subject,
            "aud": "node-1", "vouch.tenant": "default", "vouch.state": "fail",
            "vouch.previous-state": "pass", "vouch.changed-at": NOW - 2,
            "iat": NOW - 1, "exp": NOW + 300}


seeds = {"own-failure": notice("own-failure", "node-1"),
         "peer-failure": notice("peer-failure", "node-2")}
os.makedirs(CORPUS, exist_ok=True)
for name, c in seeds.items():
    token = jwt.encode(c, key_pem, algorithm="ES256", headers={"kid": kid})
    with open(os.path.join(CORPUS, name), "w") as f:
        f.write(token)
with open(os.path.join(CORPUS, "claims"), "w") as f:
    f.write(json.dumps(seeds["peer-failure"], separators=(",", ":")))
