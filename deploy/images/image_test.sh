#!/usr/bin/env bash
# The OCI images, checked the way a runtime meets them ([images]; registered
# with -DVOUCH_IMAGES=ON, see tests/README.md):
#   image_test.sh build   SRC DEBS OUT   deploy/images/build --debs DEBS OUT
#   image_test.sh inspect OUT            each archive: digests, config (non-root
#       user, entrypoint, ports, volumes, labels), the layer (the binary, every
#       shared library it needs, no shell, the user), then `podman load` and
#       `podman image inspect` agree
#   image_test.sh run     OUT            `podman run` of the verifier image;
#       where containers cannot start here, prints why and exits 77 (a skip)
set -euo pipefail
mode="$1"
shift
fail() { echo "FAIL: $*" >&2; exit 1; }

case "$mode" in
build)
  SRC="$1" DEBS="$2" OUT="$3"
  rm -rf "$OUT"
  "$SRC/deploy/images/build" --debs "$DEBS" "$OUT"
  ;;

inspect)
  OUT="$1"
  python3 - "$OUT" <<'EOF'
import hashlib, io, json, os, re, subprocess, sys, tarfile
out = sys.argv[1]
def fail(m):
    sys.exit("FAIL: " + m)
images = {"verifier": ({"8991/tcp", "9464/tcp"}, set()),
          "registrar": ({"8990/tcp", "9465/tcp"}, set()),
          "agent": ({"9466/tcp"}, {"/var/lib/vouch"})}
for name, (ports, volumes) in images.items():
    archives = [f for f in os.listdir(out) if re.match(r"vouch-%s-.*\.oci\.tar$" % name, f)]
    if len(archives) != 1:
        fail("expected one vouch-%s archive, found %s" % (name, archives))
    with tarfile.open(os.path.join(out, archives[0])) as t:
        def read(path):
            return t.extractfile(path).read()
        def blob(desc):
            data = read("blobs/sha256/" + desc["digest"].split(":")[1])
            if "sha256:" + hashlib.sha256(data).hexdigest() != desc["digest"] or \
                    len(data) != desc["size"]:
                fail("%s: blob %s does not match its digest or size" % (name, desc["digest"]))
            return data
        if json.loads(read("oci-layout"))["imageLayoutVersion"] != "1.0.0":
            fail("oci-layout")
        index = json.loads(read("index.json"))
        [mdesc] = index["manifests"]
        ref = mdesc["annotations"]["org.opencontainers.image.ref.name"]
        if not ref.startswith("vouch-%s:" % name):
            fail("%s: ref name %s" % (name, ref))
        manifest = json.loads(blob(mdesc))
        config = json.loads(blob(manifest["config"]))
        c = config["config"]
        user = c.get("User", "")
        if not user or user.split(":")[0] in ("0", "root"):
            fail("%s runs as root (User=%r)" % (name, user))
        if c["Entrypoint"] != ["/usr/bin/vouch-%s" % name]:
            fail("%s: entrypoint %s" % (name, c["Entrypoint"]))
        if c["Cmd"] != ["--config", "/etc/vouch/%s.toml" % name]:
            fail("%s: cmd %s" % (name, c["Cmd"]))
        if set(c.get("ExposedPorts", {})) != ports:
            fail("%s: ports %s" % (name, sorted(c.get("ExposedPorts", {}))))
        if set(c.get("Volumes") or {}) != volumes:
            fail("%s: volumes %s" % (name, c.get("Volumes")))
        labels = c.get("Labels", {})
        for key in ("org.opencontainers.image.title", "org.opencontainers.image.version",
                    "org.opencontainers.image.revision"):
            if not labels.get(key):
                fail("%s: label %s missing" % (name, key))
        [ldesc] = manifest["layers"]
        raw = subprocess.run(["gzip", "-dc"], input=blob(ldesc), check=True,
                             capture_output=True).stdout
        if "sha256:" + hashlib.sha256(raw).hexdigest() != config["rootfs"]["diff_ids"][0]:
            fail("%s: diff_id does not match the layer" % name)
    with tarfile.open(fileobj=io.BytesIO(raw)) as layer:
        members = {m.name: m for m in layer.getmembers()}
        binary = members.get("usr/bin/vouch-%s" % name)
        if not binary or not binary.isreg() or not binary.mode & 0o111:
            fail("%s: /usr/bin/vouch-%s missing or not executable" % (name, name))
        for shell in ("bin/sh", "bin/bash", "bin/dash", "usr/bin/sh", "usr/bin/bash",
                      "usr/bin/dash", "bin/busybox"):
            if shell in members:
                fail("%s: the image carries a shell, %s" % (name, shell))
        passwd = layer.extractfile("etc/passwd").read().decode()
        if not re.search(r"^vouch:x:%s:" % user.split(":")[0], passwd, re.M):
            fail("%s: user %s not in /etc/passwd" % (name, user))
        for v in volumes:
            m = members.get(v.lstrip("/"))
            if not m or not m.isdir() or str(m.uid) != user.split(":")[0] or m.mode & 0o077:
                fail("%s: volume %s not a private directory of the user" % (name, v))
        # Every shared library the binary needs is in the layer (the loader
        # resolves symlinks through /lib -> /usr/lib on a merged-/usr system).
        def resolve(path, depth=0):
            m = members.get(path)
            while m is not None and m.issym() and depth < 20:
                target = m.linkname if m.linkname.startswith("/") else \
                    os.path.normpath(os.path.join(os.path.dirname(path), m.linkname))
                path, m, depth = target.lstrip("/"), members.get(target.lstrip("/")), depth + 1
            return m
        data = layer.extractfile(binary).read()
        tmp = os.path.join(out, ".bin-%s" % name)
        with open(tmp, "wb") as f:
            f.write(data)
        dyn = subprocess.run(["readelf", "-d", "--wide", tmp], check=True,
                             capture_output=True, text=True).stdout
        os.unlink(tmp)
        for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dyn):
            if not any(resolve(d + lib) for d in ("usr/lib/x86_64-linux-gnu/",
                                                 "lib/x86_64-linux-gnu/", "lib64/")):
                fail("%s: the binary needs %s, which is not in the image" % (name, lib))
        if name == "agent" and not resolve("usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0"):
            fail("agent: no TCTI module for /dev/tpmrm0")
        status = [m for m in members if m.startswith("var/lib/dpkg/status.d/")]
        if "var/lib/dpkg/status.d/vouch-%s" % name not in status:
            fail("%s: no package record for vouch-%s" % (name, name))
    print("%s: %s, user %s, %d packages, layer %.1f MB" % (
        name, ref, user, len(status), len(raw) / 1e6))
EOF
  if ! command -v podman >/dev/null; then
    echo "podman is not installed: the archives were checked, not loaded"
    exit 0
  fi
  for f in "$OUT"/*.oci.tar; do
    loaded="$(podman load -q -i "$f")" || fail "podman load $f"
    ref="$(sed -n 's/^Loaded image: //p' <<<"$loaded" | tail -n1)"
    [ -n "$ref" ] || fail "podman load $f named no image: $loaded"
    user="$(podman image inspect --format '{{.Config.User}}' "$ref")"
    [ "${user%%:*}" = 65532 ] || fail "$ref: podman sees user '$user'"
    echo "podman load: $ref (user $user)"
    podman rmi -f "$ref" >/dev/null
  done
  ;;

run)
  OUT="$1"
  command -v podman >/dev/null || { echo "SKIPPED: podman is not installed"; exit 77; }
  f="$(ls "$OUT"/vouch-verifier-*.oci.tar | head -n1)"
  ref="$(podman load -q -i "$f" | sed -n 's/^Loaded image: //p' | tail -n1)"
  [ -n "$ref" ] || fail "podman load $f"
  trap 'podman rmi -f "$ref" >/dev/null 2>&1 || true' EXIT
  # Can containers start on this machine at all?
  if ! why="$(podman run --rm --read-only --network none "$ref" --version 2>&1)"; then
    echo "SKIPPED: podman cannot start a container on this machine: $why"
    exit 77
  fi
  grep -q '^vouch-verifier ' <<<"$why" || fail "unexpected --version output: $why"
  # Against a real PostgreSQL (vouch-testenv) with real certificates: the
  # verifier reports ready on /readyz.
  bin="$(dirname "$OUT")/bin"
  dir="$(mktemp -d)"
  TMPDIR="$dir" "$bin/vouch-testenv" --env-file "$dir/env" >"$dir/testenv.log" 2>&1 &
  testenv=$!
  trap 'kill $testenv 2>/dev/null; podman rm -f vouch-image-test >/dev/null 2>&1; podman rmi -f "$ref" >/dev/null 2>&1; rm -rf "$dir"' EXIT
  for _ in $(seq 1 300); do [ -s "$dir/env" ] && break; sleep 0.1; done
  set -a; source "$dir/env"; set +a
  "$bin/vouchctl" ca init "$dir/ca" >/dev/null
  "$bin/vouchctl" ca issue "$dir/ca" --server localhost --san 127.0.0.1 >/dev/null
  chmod -R a+rX "$dir"
  srv="$dir/ca/servers/localhost"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  podman run -d --name vouch-image-test --read-only --network host \
    -v "$dir:$dir" "$ref" --verifier-listen 127.0.0.1:0 \
    --metrics-listen "127.0.0.1:$port" --database-url "$VOUCH_DATABASE_URL" \
    --tls-ca-file "$dir/ca/ca.pem" --tls-cert-file "$srv/server.pem" \
    --tls-key-file "$srv/server.key" >/dev/null
  for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; then
      echo "the verifier image serves against PostgreSQL: /readyz 200"
      exit 0
    fi
    sleep 0.2
  done
  podman logs vouch-image-test >&2 || true
  fail "the verifier container never became ready"
  ;;
*)
  fail "unknown mode $mode"
  ;;
esac
