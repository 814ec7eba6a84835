#!/usr/bin/python3
# usage: keylime_keyring_interop.py VOUCHCTL KEYLIME_SRC
#
# Keys learned from keyring measurements, against Keylime's own verifier
# code (KEYLIME_SRC holds Keylime's `keylime` package, commit 9b1f6e6a;
# nothing of it is copied here): for each small IMA log below, Keylime's
# keylime.ima.ima.process_measurement_list (with an empty ImaKeyrings, as
# its verifier starts a boot) and `vouchctl ima check` must agree on pass or
# fail. The logs put a certificate on a keyring (ima-buf) and sign files
# (ima-sig) with its key, in the orders and variants where learning
# matters; others carry device-mapper measurements (ima-buf entries named
# dm_table_load, dm_device_resume, ...), which both judge by the policy's
# "ima-buf" digests while "ima"."dm_policy" is null, the only value
# Keylime's runtime-policy schema admits. A policy with a dm_policy is
# refused by both (Keylime's validate_runtime_policy, vouchctl exit 2).
# Runs with Debian's python3 and python3-cryptography,
# -jsonschema, -gpg, -lark, -packaging, -yaml (Keylime's imports). Prints
# "N passed, N failed".
import datetime
import hashlib
import json
import logging
import os
import struct
import subprocess
import sys
import tempfile

VOUCHCTL, KEYLIME_SRC = sys.argv[1:3]
if not os.path.isfile(os.path.join(KEYLIME_SRC, "keylime", "ima", "ima.py")):
    print(f"Keylime's source is not at {KEYLIME_SRC} (want keylime/ima/ima.py)")
    print("0 passed, 1 failed")
    sys.exit(1)
sys.path.insert(0, KEYLIME_SRC)
logging.disable(logging.CRITICAL)
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, utils  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from keylime.common.algorithms import Hash  # noqa: E402
from keylime.ima import ima  # noqa: E402
from keylime.ima.file_signatures import ImaKeyrings  # noqa: E402


def cert_der(key, skid=None):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ima")])
    now = datetime.datetime(2026, 1, 1)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
         .public_key(key.public_key()).serial_number(1)
         .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)))
    if skid is not None:
        b = b.add_extension(x509.SubjectKeyIdentifier(skid), critical=False)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def keyidv2(key):
    # ima-evm-utils: SHA-1 of the uncompressed EC point, last 4 bytes.
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return int.from_bytes(hashlib.sha1(point).digest()[-4:], "big")


def digest_of(n):
    return hashlib.sha256(f"contents of file {n}".encode()).digest()


def sig_field(key, digest, key_id):
    sig = key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    return struct.pack(">BBBIH", 3, 2, 4, key_id, len(sig)) + sig


def field(data):
    return struct.pack("<I", len(data)) + data


def line(template, digest, name, extra):
    d = field(b"sha256:\0" + digest) + field(name.encode() + b"\0")
    td = d + field(extra)
    return (f"10 {hashlib.sha1(td).hexdigest()} {template} "
            f"sha256:{digest.hex()} {name} {extra.hex()}")


def keyring(name, buf):
    return line("ima-buf", hashlib.sha256(buf).digest(), name, buf)


def signed(path, n, sig):
    return line("ima-sig", digest_of(n), path, sig)


taught = ec.generate_private_key(ec.SECP256R1())
other = ec.generate_private_key(ec.SECP256R1())
skid = bytes(range(16)) + b"\x0b\xad\xc0\xde"
taught_cert = cert_der(taught)
skid_cert = cert_der(taught, skid)
other_cert = cert_der(other)
tid = keyidv2(taught)
good = signed("/opt/app", 1, sig_field(taught, digest_of(1), tid))
policy = {
    "meta": {"version": 1}, "release": 0, "digests": {}, "excludes": [],
    "keyrings": {".ima": [hashlib.sha256(taught_cert).hexdigest(),
                          hashlib.sha256(skid_cert).hexdigest()]},
    "ima": {"ignored_keyrings": [".builtin_trusted_keys"],
            "log_hash_alg": "sha1", "dm_policy": None},
    "ima-buf": {}, "verification-keys": "",
}
# Device-mapper measurements (the kernel's dm-ima format): a dm-verity
# table load and the resume that activates it.
root = hashlib.sha256(b"root of the verity tree").hexdigest()
table = (f"dm_version=4.45.0;name=root,uuid=CRYPT-VERITY-1,major=253,minor=0,"
         f"minor_count=1,num_targets=1;target_index=0,target_begin=0,"
         f"target_len=1953125,target_name=verity,target_version=1.8.0,"
         f"hash_failed=V,verity_version=1,data_device_name=7:1,"
         f"hash_device_name=7:0,verity_algorithm=sha256,root_digest={root},"
         f"salt=-,ignore_zero_blocks=n,check_at_most_once=n;").encode()
forged = table.replace(root.encode(), hashlib.sha256(b"forged").hexdigest().encode())
resume = (b"dm_version=4.45.0;name=root,uuid=CRYPT-VERITY-1,major=253,minor=0,"
          b"minor_count=1,num_targets=1;active_table_hash=sha256:"
          + hashlib.sha256(table).hexdigest().encode()
          + b";current_device_capacity=1953125;")
policy["ima-buf"] = {
    "dm_table_load": [hashlib.sha256(table).hexdigest()],
    "dm_device_resume": [hashlib.sha256(resume).hexdigest()],
}
# name -> (log lines, expected verdict: True = pass)
cases = {
    "key on an allowed keyring, then a file it signed":
        ([keyring(".ima", taught_cert), good], True),
    "the signed file before the key is on a keyring":
        ([good, keyring(".ima", taught_cert)], False),
    "a forged signature after the key":
        ([keyring(".ima", taught_cert),
          signed("/opt/app", 1, sig_field(taught, digest_of(2), tid))], False),
    "the key on a keyring the policy does not list":
        ([keyring(".evm", taught_cert), good], False),
    "the key on an ignored keyring":
        ([keyring(".builtin_trusted_keys", taught_cert), good], False),
    "another key's certificate on the allowed keyring":
        ([keyring(".ima", other_cert),
          signed("/opt/app", 1, sig_field(other, digest_of(1), keyidv2(other)))],
         False),
    "a certificate named by its Subject Key Identifier":
        ([keyring(".ima", skid_cert),
          signed("/opt/app", 1, sig_field(taught, digest_of(1), 0x0badc0de))],
         True),
    "a dm-verity table load and its resume the policy lists":
        ([keyring("dm_table_load", table), keyring("dm_device_resume", resume)],
         True),
    "a dm-verity table load with another root digest":
        ([keyring("dm_table_load", forged)], False),
    "a device-mapper event the policy does not list":
        ([keyring("dm_device_remove", b"dm_version=4.45.0;remove_all=n;")],
         False),
}

work = tempfile.mkdtemp()
policy_file = os.path.join(work, "policy.json")
with open(policy_file, "w") as f:
    json.dump(policy, f)
passed = failed = 0
for name, (lines, expected) in cases.items():
    _, failure = ima.process_measurement_list(
        None, [l + "\n" for l in lines], json.loads(json.dumps(policy)),
        ima_keyrings=ImaKeyrings(), hash_alg=Hash.SHA1)
    keylime_pass = not failure
    log = os.path.join(work, "log")
    with open(log, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    r = subprocess.run([VOUCHCTL, "ima", "check", "--log", log, "--policy",
                        policy_file, "--bank", "sha1"],
                       capture_output=True, text=True)
    if r.returncode not in (0, 1):
        print(f"FAIL {name}: vouchctl exit {r.returncode}: {r.stderr.strip()}")
        failed += 1
        continue
    vouch_pass = r.returncode == 0
    if keylime_pass == vouch_pass == expected:
        print(f"ok   {name}: both {'pass' if expected else 'fail'}")
        passed += 1
    else:
        print(f"FAIL {name}: Keylime {'pass' if keylime_pass else 'fail'}, "
              f"vouchctl {'pass' if vouch_pass else 'fail'}, expected "
              f"{'pass' if expected else 'fail'}\n{r.stdout}")
        failed += 1
# A dm_policy: Keylime's schema refuses it, and so does vouchctl.
dm = json.loads(json.dumps(policy))
dm["ima"]["dm_policy"] = {"match_on": "name", "rules": {}}
try:
    ima.validate_runtime_policy(dm)
    keylime_refuses = False
except ima.ImaValidationError:
    keylime_refuses = True
with open(policy_file, "w") as f:
    json.dump(dm, f)
with open(log, "w") as f:
    f.write(keyring("dm_table_load", table) + "\n")
r = subprocess.run([VOUCHCTL, "ima", "check", "--log", log, "--policy",
                    policy_file, "--bank", "sha1"], capture_output=True, text=True)
if keylime_refuses and r.returncode == 2 and "dm_policy" in r.stderr:
    print("ok   a dm_policy: both refuse the policy")
    passed += 1
else:
    print(f"FAIL a dm_policy: Keylime refuses: {keylime_refuses}, vouchctl "
          f"exit {r.returncode}: {r.stderr.strip()}")
    failed += 1
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
