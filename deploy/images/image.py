#!/usr/bin/env python3
"""Turns an mmdebstrap rootfs into a Vouch OCI image archive (deploy/images/build).

    image.py ROOT OUT.oci.tar --deb vouch-verifier_*.deb --roots PKG,...
             --drop tpm-udev,adduser --entrypoint /usr/bin/vouch-verifier
             --cmd=--config,/etc/vouch/verifier.toml --port 8991 --port 9464
             [--volume /var/lib/vouch] --label KEY=VALUE ... --created EPOCH

ROOT is an `mmdebstrap --variant=extract --skip=cleanup/apt/cache` directory
of ROOTS and their dependencies. This script
  1. removes the files of packages that only DROP brought in (tpm-udev pulls
     udev, adduser, passwd, ...: host integration a container does not use),
  2. unpacks the Vouch package, adds user and group 65532 (`vouch`), the
     state directory, and a /var/lib/dpkg/status.d entry per package (what
     image scanners read), drops documentation except copyright files,
  3. writes one gzip layer, the image config and manifest as an OCI image
     layout, packed into one tar (an "oci-archive"), reproducibly: sorted
     entries, timestamps clamped to EPOCH, no host user names.
Only the standard library is used (Debian's python3).
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

UID = 65532
# Paths of the rootfs that are not part of the image: package manager state
# and caches, documentation (copyright files are kept), systemd integration.
EXCLUDE_TREES = ("etc/apt", "var/lib/apt", "var/cache", "var/log", "usr/share/man",
                 "usr/share/info", "usr/share/locale", "usr/share/lintian",
                 "usr/share/bug", "usr/share/doc-base", "lib/systemd",
                 "usr/lib/systemd", "etc/systemd")


def excluded(rel, is_dir):
    if any(rel == t or rel.startswith(t + "/") for t in EXCLUDE_TREES):
        return True
    parts = rel.split("/")
    if rel.startswith("var/lib/dpkg/"):      # only status.d (for scanners)
        return parts[3] != "status.d"
    if rel.startswith("usr/share/doc/") and len(parts) > 4:
        return True                          # usr/share/doc/PKG/SUBDIR/...
    if rel.startswith("usr/share/doc/") and len(parts) == 4:
        return is_dir or parts[3] != "copyright"
    return False


def fail(message):
    sys.stderr.write("image.py: %s\n" % message)
    sys.exit(1)


def control(deb):
    """The control fields of a .deb (one dpkg-deb call)."""
    text = subprocess.run(["dpkg-deb", "-f", deb], check=True,
                          capture_output=True, text=True).stdout
    fields, key = {}, None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line
        elif ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return text, fields


def dep_names(depends):
    """Package names of a Depends field: the first of each alternative."""
    names = []
    for clause in filter(None, (c.strip() for c in depends.split(","))):
        first = clause.split("|")[0].strip()
        names.append(re.split(r"[\s(:]", first, maxsplit=1)[0])
    return names


def packages_in(root):
    """Package -> (deb, dependency names) of every downloaded .deb."""
    found = {}
    provides = {}
    archives = os.path.join(root, "var/cache/apt/archives")
    for name in sorted(os.listdir(archives)):
        if not name.endswith(".deb"):
            continue
        deb = os.path.join(archives, name)
        _, f = control(deb)
        pkg = f["Package"]
        deps = dep_names(f.get("Pre-Depends", "") + "," + f.get("Depends", ""))
        found[pkg] = (deb, deps)
        for p in dep_names(f.get("Provides", "")):
            provides.setdefault(p, pkg)
    return found, provides


def closure(roots, found, provides, drop):
    keep, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        name = name if name in found else provides.get(name, name)
        if name in keep or name in drop:
            continue
        if name not in found:
            fail("%s is needed but was not downloaded" % name)
        keep.add(name)
        todo.extend(found[name][1])
    return keep


def deb_files(deb):
    out = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], check=True,
                         capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as t:
        return [(m.name.lstrip("./"), m.isdir()) for m in t.getmembers()]


def prune(root, found, keep):
    """Removes the files of the packages outside `keep` (Debian packages
    never share a file, only directories)."""
    for pkg in sorted(set(found) - keep):
        for path, is_dir in deb_files(found[pkg][0]):
            full = os.path.join(root, path)
            if path and not is_dir and (os.path.islink(full) or os.path.isfile(full)):
                os.unlink(full)
    # Directories emptied above (bottom-up; the base layout stays).
    for dirpath, dirs, files in os.walk(root, topdown=False):
        rel = os.path.relpath(dirpath, root)
        if rel.count("/") >= 1 and not os.listdir(dirpath) and \
                not rel.startswith(("var/lib/vouch", "tmp", "etc/vouch")):
            os.rmdir(dirpath)


def write(root, path, text, mode=0o644):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)
    os.chmod(full, mode)


def finish_rootfs(root, args, found, keep):
    subprocess.run(["dpkg-deb", "-x", args.deb, root], check=True)
    status = os.path.join(root, "var/lib/dpkg/status.d")
    os.makedirs(status, exist_ok=True)
    for deb in sorted([found[p][0] for p in keep] + [args.deb]):
        text, f = control(deb)
        write(root, "var/lib/dpkg/status.d/" + f["Package"],
              text.rstrip("\n") + "\nStatus: install ok installed\n")
    write(root, "etc/passwd", "root:x:0:0:root:/root:/usr/sbin/nologin\n"
          "vouch:x:%d:%d:vouch:/nonexistent:/usr/sbin/nologin\n" % (UID, UID))
    write(root, "etc/group", "root:x:0:\nvouch:x:%d:\n" % UID)
    write(root, "etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
    os.makedirs(os.path.join(root, "tmp"), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    for volume in args.volume:
        full = os.path.join(root, volume.lstrip("/"))
        os.makedirs(full, exist_ok=True)
        os.chown(full, UID, UID)
        os.chmod(full, 0o700)


def layer(root, epoch):
    """The rootfs as one tar (bytes), sorted, timestamps clamped to epoch."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        entries = []
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for name in dirs + sorted(files):
                entries.append(os.path.relpath(os.path.join(dirpath, name), root))
        for rel in sorted(entries):
            full = os.path.join(root, rel)
            if excluded(rel, os.path.isdir(full) and not os.path.islink(full)):
                continue
            info = t.gettarinfo(os.path.join(root, rel), arcname=rel)
            info.mtime = min(int(info.mtime), epoch)
            info.uname = info.gname = ""
            info.pax_headers = {}
            if info.isreg():
                with open(os.path.join(root, rel), "rb") as f:
                    t.addfile(info, f)
            else:
                t.addfile(info)
    return buf.getvalue()


def blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs/sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def pack(root, args):
    raw = layer(root, args.created)
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, filename="") as z:
        z.write(raw)
    layout = args.out + ".layout"
    shutil.rmtree(layout, ignore_errors=True)
    os.makedirs(os.path.join(layout, "blobs/sha256"))
    layer_desc = blob(layout, gz.getvalue())
    layer_desc["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    labels = dict(kv.split("=", 1) for kv in args.label)
    created = _rfc3339(args.created)
    config = {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": "%d:%d" % (UID, UID),
            "Entrypoint": [args.entrypoint],
            "Cmd": args.cmd.split(",") if args.cmd else [],
            "Env": ["PATH=/usr/bin:/bin"],
            "WorkingDir": "/",
            "ExposedPorts": {"%s/tcp" % p: {} for p in args.port},
            "Volumes": {v: {} for v in args.volume},
            "StopSignal": "SIGTERM",
            "Labels": labels,
        },
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
        "history": [{"created": created,
                     "created_by": "deploy/images/build (mmdebstrap, Debian packages)"}],
    }
    config_desc = blob(layout, json.dumps(config, sort_keys=True).encode())
    config_desc["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = {"schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_desc, "layers": [layer_desc],
                "annotations": labels}
    manifest_desc = blob(layout, json.dumps(manifest, sort_keys=True).encode())
    manifest_desc["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
    manifest_desc["annotations"] = {"org.opencontainers.image.ref.name": args.ref}
    index = {"schemaVersion": 2,
             "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [manifest_desc]}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f, sort_keys=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with tarfile.open(args.out, "w", format=tarfile.PAX_FORMAT) as t:
        for dirpath, dirs, files in os.walk(layout):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(dirpath, name)
                info = t.gettarinfo(full, arcname=os.path.relpath(full, layout))
                info.mtime, info.uid, info.gid, info.uname, info.gname = \
                    args.created, 0, 0, "", ""
                with open(full, "rb") as f:
                    t.addfile(info, f)
    shutil.rmtree(layout)
    return len(raw), layer_desc["size"]


def _rfc3339(epoch):
    import datetime
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc) \
        .strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("out")
    ap.add_argument("--deb", required=True)
    ap.add_argument("--ref", required=True)
    ap.add_argument("--roots", required=True)
    ap.add_argument("--drop", default="")
    ap.add_argument("--entrypoint", required=True)
    ap.add_argument("--cmd", default="")
    ap.add_argument("--port", action="append", default=[])
    ap.add_argument("--volume", action="append", default=[])
    ap.add_argument("--label", action="append", default=[])
    ap.add_argument("--created", type=int, required=True)
    args = ap.parse_args()
    found, provides = packages_in(args.root)
    drop = set(filter(None, args.drop.split(",")))
    keep = closure(filter(None, args.roots.split(",")), found, provides, drop)
    prune(args.root, found, keep)
    finish_rootfs(args.root, args, found, keep)
    raw, compressed = pack(args.root, args)
    print("%s: %d packages, layer %.1f MB (%.1f MB compressed): %s" % (
        args.ref, len(keep) + 1, raw / 1e6, compressed / 1e6, " ".join(sorted(keep))))


if __name__ == "__main__":
    main()
