# usage: python3 ima_gen.py N [EXCLUDES]   (writes ./log and ./policy.json)
# Generates an N-entry ima-ng ASCII log (SHA-1 template hashes, SHA-256
# file digests) and a Keylime runtime policy listing 95% of the paths, with
# EXCLUDES excludes (default 40, at least 1); the last, "/tmp/.*", covers
# the other 5%, the rest match nothing (a policy's usual exclude list).
import hashlib, json, struct, sys
n = int(sys.argv[1])
n_excludes = max(1, int(sys.argv[2])) if len(sys.argv) > 2 else 40
lines = []; digests = {}
for i in range(n):
    d = hashlib.sha256(f"file {i}".encode()).digest()
    if i % 20 == 19:
        path = f"/tmp/build-{i % 1000}/obj/file{i}.o"
    else:
        path = f"/usr/lib/x86_64-linux-gnu/libexample{i}.so.{i % 7}"
        digests[path] = [d.hex()]
    p = path.encode()
    a = b"sha256:\0" + d
    td = struct.pack("<I", len(a)) + a + struct.pack("<I", len(p) + 1) + p + b"\0"
    lines.append(f"10 {hashlib.sha1(td).hexdigest()} ima-ng sha256:{d.hex()} {path}\n")
open("log", "w").write("".join(lines))
excludes = [f"/var/cache/app{k}/.*" for k in range(n_excludes - 1)] + ["/tmp/.*"]
policy = {"meta": {"version": 1, "generator": 0}, "release": 0, "digests": digests,
          "excludes": excludes, "keyrings": {},
          "ima": {"ignored_keyrings": [], "log_hash_alg": "sha1", "dm_policy": None},
          "ima-buf": {}, "verification-keys": ""}
json.dump(policy, open("policy.json", "w"))
