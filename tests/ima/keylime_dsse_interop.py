#!/usr/bin/python3
# usage: keylime_dsse_interop.py VOUCHCTL KEYLIME_SRC TEST_DATA_DIR
#
# DSSE-signed runtime policies, both directions, against Keylime's own code
# (KEYLIME_SRC holds Keylime's `keylime` package, commit 9b1f6e6a; nothing of
# it is copied here): `vouchctl policy sign` output is accepted by Keylime's
# keylime.signing.verify_dsse_envelope and keylime.ima.verify_runtime_policy
# (the check its tenant and verifier run on upload), and envelopes made by
# Keylime's keylime.policy.sign_runtime_policy._sign_policy (ecdsa and x509
# backends) are accepted by `vouchctl policy verify` and `vouchctl ima
# check`. A tampered payload and a wrong key are refused by both. Runs with
# Debian's python3 and python3-cryptography, -jsonschema, -gpg, -lark,
# -packaging, -yaml (Keylime's imports). Prints "N passed, N failed".
import atexit
import base64
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile

VOUCHCTL, KEYLIME_SRC, DATA = sys.argv[1:4]

if not os.path.isfile(os.path.join(KEYLIME_SRC, "keylime", "dsse", "dsse.py")):
    print(f"Keylime's source is not at {KEYLIME_SRC} (want keylime/dsse/dsse.py "
          "there): configure with -DVOUCH_KEYLIME_SRC=<a keylime checkout>")
    print("0 passed, 1 failed")
    sys.exit(1)

sys.path.insert(0, KEYLIME_SRC)
# Keylime's config module warns that /etc/keylime/logging.conf is missing.
logging.disable(logging.WARNING)
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from keylime import signing  # noqa: E402
from keylime.dsse import ecdsa, x509  # noqa: E402
from keylime.ima import ima  # noqa: E402
from keylime.policy import sign_runtime_policy  # noqa: E402

passed = 0
failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok    {what}")
    else:
        failed += 1
        print(f"FAIL  {what}")


def vouchctl(*args):
    r = subprocess.run([VOUCHCTL, *args], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def keylime_accepts(envelope: bytes, key_pem) -> bool:
    """Keylime's own upload check of a signed policy (ima.py)."""
    try:
        ima.verify_runtime_policy(envelope, key_pem, verify_sig=True)
        return True
    except ima.ImaValidationError:
        return False


def tamper(envelope: str) -> str:
    env = json.loads(envelope)
    payload = json.loads(base64.b64decode(env["payload"]))
    payload["digests"]["/usr/bin/evil"] = ["aa" * 32]
    env["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps(env)


def pub_pem(private_key) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


tmp = tempfile.mkdtemp(prefix="vouch-dsse-")
atexit.register(shutil.rmtree, tmp, ignore_errors=True)


def path(name):
    return os.path.join(tmp, name)


def write(name, data):
    if data is None:
        data = b""
    with open(path(name), "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path(name)


def read(name):
    with open(path(name), "rb") as f:
        return f.read()


# Keys made by Keylime's own ecdsa backend (P-256, TraditionalOpenSSL PEM).
signer = ecdsa.Signer.create(path("ec.pem"))
other = ecdsa.Signer.create(path("other.pem"))
write("ec.pub", pub_pem(signer.secret_key))
write("other.pub", pub_pem(other.secret_key))

# A Keylime policy, and the same policy with Vouch's reject list, where the
# rejected digest is one the policy also allows.
policy_file = os.path.join(DATA, "keylime", "runtime-policy-test.json")
with open(policy_file, "rb") as f:
    policy_bytes = f.read()
log_file = os.path.join(DATA, "keylime", "ima-log-sha256")
rc, out = vouchctl("policy-file", "create", "--from-ima-log", log_file,
                   "-f", path("learned.json"))
check(rc == 0, f"vouchctl policy create ({out.strip()})")
learned = json.loads(read("learned.json"))
rejected_path, rejected_digests = next(
    (p, d) for p, d in learned["digests"].items() if p != "boot_aggregate")
learned["reject"] = {"digests": [rejected_digests[0]], "paths": []}
reject_policy = write("reject-policy.json", json.dumps(learned, indent=1))

# --- Vouch signs, Keylime verifies ------------------------------------------
rc, out = vouchctl("policy-file", "sign", "--policy", policy_file,
                   "--key", path("ec.pem"), "-f", path("vouch-ec.json"))
check(rc == 0, f"vouchctl policy sign with an EC key ({out.strip()})")
env = read("vouch-ec.json")
wrapper = json.loads(env)
check(wrapper["payloadType"] == sign_runtime_policy.KEYLIME_PAYLOAD_TYPE,
      "payloadType is Keylime's")
check(wrapper["signatures"][0]["keyid"] == signer.keyid(),
      "keyid is Keylime's ecdsa key id")
verified = signing.verify_dsse_envelope(env, read("ec.pub"))
check(verified is not None and verified.payload == policy_bytes,
      "keylime.signing.verify_dsse_envelope accepts Vouch's envelope")
check(keylime_accepts(env, read("ec.pub")),
      "keylime.ima.verify_runtime_policy accepts Vouch's envelope")
check(signing.verify_dsse_envelope(env, read("other.pub")) is None,
      "Keylime refuses Vouch's envelope with another key")
bad = tamper(env.decode()).encode()
check(signing.verify_dsse_envelope(bad, read("ec.pub")) is None,
      "Keylime refuses Vouch's envelope with a tampered payload")
rc, _ = vouchctl("policy-file", "verify", "--policy", path("vouch-ec.json"),
                 "--key", path("ec.pub"))
check(rc == 0, "vouchctl policy verify accepts its own envelope")
write("vouch-ec-tampered.json", bad)
rc, _ = vouchctl("policy-file", "verify", "--policy", path("vouch-ec-tampered.json"),
                 "--key", path("ec.pub"))
check(rc == 1, "vouchctl refuses the tampered envelope")

# Vouch's reject extension passes Keylime's schema (Keylime ignores it).
rc, out = vouchctl("policy-file", "sign", "--policy", reject_policy,
                   "--key", path("ec.pem"), "-f", path("vouch-reject.json"))
check(rc == 0, f"vouchctl signs a policy with a reject list ({out.strip()})")
check(keylime_accepts(read("vouch-reject.json"), read("ec.pub")),
      "Keylime accepts a signed policy with a reject list")

# With an X.509 certificate: Keylime reads the certificate from the keyid.
x509_signer = x509.Signer(signer.secret_key, certificate_path=path("cert.pem"))
rc, out = vouchctl("policy-file", "sign", "--policy", policy_file,
                   "--key", path("ec.pem"), "--cert", path("cert.pem"),
                   "-f", path("vouch-x509.json"))
check(rc == 0, f"vouchctl policy sign --cert ({out.strip()})")
env = read("vouch-x509.json")
check(json.loads(env)["signatures"][0]["keyid"] == x509_signer.keyid(),
      "keyid is Keylime's x509 key id (the base64 certificate)")
verified = signing.verify_dsse_envelope(env, None)
check(verified is not None and verified.payload == policy_bytes,
      "Keylime verifies Vouch's certificate envelope")
rc, _ = vouchctl("policy-file", "sign", "--policy", policy_file,
                 "--key", path("other.pem"), "--cert", path("cert.pem"),
                 "-f", path("unused.json"))
check(rc == 2, "vouchctl refuses a certificate that is not the key's")

# RSA: Vouch signs and verifies (Keylime's verifier takes EC keys only).
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
write("rsa.pem", rsa_key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption()))
write("rsa.pub", pub_pem(rsa_key))
rc, out = vouchctl("policy-file", "sign", "--policy", policy_file,
                   "--key", path("rsa.pem"), "-f", path("vouch-rsa.json"))
check(rc == 0, f"vouchctl policy sign with an RSA key ({out.strip()})")
rc, _ = vouchctl("policy-file", "verify", "--policy", path("vouch-rsa.json"),
                 "--key", path("rsa.pub"))
check(rc == 0, "vouchctl verifies its RSA envelope")
rc, _ = vouchctl("policy-file", "verify", "--policy", path("vouch-rsa.json"),
                 "--key", path("ec.pub"))
check(rc == 1, "vouchctl refuses the RSA envelope with another key")

# Refusals on the signing side.
write("not-policy.json", b'{"meta": {"version": 1}, "unknown": 1}')
rc, _ = vouchctl("policy-file", "sign", "--policy", path("not-policy.json"),
                 "--key", path("ec.pem"), "-f", path("unused.json"))
check(rc == 2, "vouchctl refuses to sign an invalid policy")
p192 = ec.generate_private_key(ec.SECP192R1())
write("p192.pem", p192.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption()))
rc, _ = vouchctl("policy-file", "sign", "--policy", policy_file,
                 "--key", path("p192.pem"), "-f", path("unused.json"))
check(rc == 2, "vouchctl refuses a P-192 key")

# --- Keylime signs, Vouch verifies -------------------------------------------
# Keylime validates against its schema before signing, which its own
# runtime-policy-test.json does not pass; the policy vouchctl learned does.
learned_file = path("learned.json")
env = sign_runtime_policy._sign_policy(ecdsa.Signer(signer.secret_key),
                                       learned_file)
check(env is not None, "Keylime's _sign_policy signs (ecdsa backend)")
write("keylime-ec.json", env)
rc, _ = vouchctl("policy-file", "verify", "--policy", path("keylime-ec.json"),
                 "--key", path("ec.pub"))
check(rc == 0, "vouchctl policy verify accepts Keylime's envelope")
rc, _ = vouchctl("policy-file", "verify-signature", "--policy",
                 path("keylime-ec.json"), "--key", path("other.pub"))
check(rc == 1, "vouchctl refuses Keylime's envelope with another key")
write("keylime-ec-tampered.json", tamper(env))
rc, _ = vouchctl("policy-file", "verify", "--policy",
                 path("keylime-ec-tampered.json"), "--key", path("ec.pub"))
check(rc == 1, "vouchctl refuses Keylime's envelope with a tampered payload")
check(not keylime_accepts(read("keylime-ec-tampered.json"), read("ec.pub")),
      "Keylime refuses its own tampered envelope")

env = sign_runtime_policy._sign_policy(x509_signer, learned_file)
check(env is not None, "Keylime's _sign_policy signs (x509 backend)")
write("keylime-x509.json", env)
rc, _ = vouchctl("policy-file", "verify", "--policy", path("keylime-x509.json"),
                 "--key", path("cert.pem"))
check(rc == 0, "vouchctl verifies Keylime's x509 envelope with the certificate")

# A Keylime-signed policy carrying Vouch's reject list: vouchctl ima check
# loads it through the signature and fails the rejected digest.
env = sign_runtime_policy._sign_policy(ecdsa.Signer(signer.secret_key),
                                       reject_policy)
check(env is not None, "Keylime signs a policy with a reject list")
write("keylime-reject.json", env)
rc, out = vouchctl("ima", "check", "--log", log_file, "--policy",
                   path("keylime-reject.json"), "--policy-key", path("ec.pub"),
                   "--json")
report = json.loads(out) if rc in (0, 1) else {}
check(rc == 1 and any(f["reason"] == "rejected" and f["path"] == rejected_path
                      for f in report.get("failures", [])),
      "vouchctl ima check fails the rejected digest of a Keylime-signed policy")
rc, _ = vouchctl("ima", "check", "--log", log_file, "--policy",
                 path("keylime-reject.json"), "--policy-key", path("other.pub"))
check(rc == 2, "vouchctl ima check refuses the policy with another key")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
