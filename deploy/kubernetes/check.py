#!/usr/bin/python3
"""Structural check of Vouch's Kubernetes manifests (deploy/kubernetes).

  check.py --rendered             render every overlay with `kubectl kustomize`
                                  and check the output (exit 77 when kubectl is
                                  missing: the caller reports a skip)
  check.py --source               assemble every overlay from its YAML files
                                  (resources, components, configMapGenerator,
                                  images, JSON patches) without kustomize, and
                                  check that
  check.py --self-test            break a rendered copy (assembled from source
                                  without kubectl) in known ways and require
                                  that each break is caught

What is checked (each failure names the object and the rule):
  - every workload container: resources (requests, memory limit),
    readOnlyRootFilesystem, allowPrivilegeEscalation false, runAsNonRoot
    (pod or container) - except the agent DaemonSet, which needs the node's
    TPM and securityfs (privileged, uid 0; listed in PRIVILEGED)
  - Deployments, StatefulSets and DaemonSets: liveness and readiness probes
    whose port is a named container port
  - the verifier: at least 2 replicas, pod anti-affinity, a PodDisruptionBudget
    and a HorizontalPodAutoscaler (minReplicas >= 2) that select it
  - every ConfigMap a pod mounts exists; every Secret it mounts or reads
    exists, comes from a cert-manager Certificate, or is one the operator
    creates (OPERATOR_SECRETS)
  - Services select some pod and their targetPorts are that pod's port names;
    ServiceMonitor endpoints name a port of a selected Service
  - the listen ports in each mounted TOML config equal the container's
    `grpc` and `metrics` ports; every Vouch image has the same tag
  - the agent mounts /dev/tpmrm0 and /sys/kernel/security read-only
"""
import copy
import os
import shutil
import subprocess
import sys
import tomllib

import yaml

ROOT = os.path.dirname(os.path.abspath(__file__))
OVERLAYS = ["dev", "production"]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
PROBED = {"Deployment", "StatefulSet", "DaemonSet"}
PRIVILEGED = {"vouch-agent"}  # DaemonSet on the node's TPM (agent.yaml)
OPERATOR_SECRETS = {"vouch-database", "vouch-postgres"}


def render_kustomize(overlay):
    out = subprocess.run(
        ["kubectl", "kustomize", os.path.join(ROOT, "overlays", overlay)],
        check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


# --- assembling without kustomize -----------------------------------------

def _load_files(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def _pointer_set(doc, path, value, op):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
    for p in parts[:-1]:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    last = parts[-1]
    if isinstance(doc, list):
        if last == "-":
            doc.append(value)
        elif op == "add":
            doc.insert(int(last), value)
        else:
            doc[int(last)] = value
    else:
        if op == "replace" and last not in doc:
            raise KeyError(f"replace of missing {path}")
        doc[last] = value


def assemble(directory):
    """The objects a kustomization directory yields (the subset Vouch uses)."""
    with open(os.path.join(directory, "kustomization.yaml")) as f:
        k = yaml.safe_load(f)
    docs = []
    for entry in k.get("resources", []) + k.get("components", []):
        path = os.path.normpath(os.path.join(directory, entry))
        docs += assemble(path) if os.path.isdir(path) else _load_files(path)
    for gen in k.get("configMapGenerator", []):
        data = {}
        for spec in gen.get("files", []):
            key, _, rel = spec.partition("=")
            with open(os.path.join(directory, rel)) as f:
                data[key] = f.read()
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": gen["name"]}, "data": data})
    for patch in k.get("patches", []):
        target = patch["target"]
        for d in docs:
            if (d["kind"] == target.get("kind")
                    and d["metadata"]["name"] == target.get("name")):
                for op in yaml.safe_load(patch["patch"]):
                    _pointer_set(d, op["path"], op.get("value"), op["op"])
    images = {i["name"]: i for i in k.get("images", [])}
    for d in docs:
        for c in _containers(d):
            name, _, tag = c["image"].partition(":")
            base = next((i for n, i in images.items()
                         if n == name or i.get("newName") == name), None)
            if base is None:
                continue
            name = base.get("newName", name)
            tag = base.get("newTag", tag)
            c["image"] = f"{name}:{tag}" if tag else name
    if "namespace" in k:
        for d in docs:
            if d["kind"] != "Namespace":
                d["metadata"]["namespace"] = k["namespace"]
    return docs


# --- the checks ------------------------------------------------------------

def _pod(d):
    if d["kind"] in WORKLOADS:
        return d["spec"]["template"]["spec"]
    return None


def _containers(d):
    pod = _pod(d)
    return pod["containers"] if pod else []


def _labels(d):
    return d["spec"]["template"]["metadata"].get("labels", {})


def _selects(selector, labels):
    structured = "matchLabels" in selector or "matchExpressions" in selector
    plain = selector.get("matchLabels", {}) if structured else selector
    for k, v in plain.items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        if e["operator"] == "In" and labels.get(e["key"]) not in e["values"]:
            return False
    return True


def _port_of(listen):
    return int(listen.rsplit(":", 1)[1])


def check(docs):
    errors = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    def err(d, msg):
        errors.append(f"{d['kind']}/{d['metadata']['name']}: {msg}")

    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    secrets = {d["metadata"]["name"] for d in by_kind.get("Secret", [])}
    secrets |= {c["spec"]["secretName"] for c in by_kind.get("Certificate", [])}
    secrets |= OPERATOR_SECRETS
    tags = set()

    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        pod = _pod(d)
        name = d["metadata"]["name"]
        pod_sc = pod.get("securityContext", {})
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            where = f"container {c['name']}"
            res = c.get("resources", {})
            if not res.get("requests") or "memory" not in res.get("limits", {}):
                err(d, f"{where}: no resource requests or memory limit")
            if sc.get("readOnlyRootFilesystem") is not True:
                err(d, f"{where}: readOnlyRootFilesystem is not true")
            if name not in PRIVILEGED:
                if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                    err(d, f"{where}: runAsNonRoot is not set")
                if sc.get("allowPrivilegeEscalation") is not False:
                    err(d, f"{where}: allowPrivilegeEscalation is not false")
                if sc.get("privileged"):
                    err(d, f"{where}: privileged")
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            if d["kind"] in PROBED:
                for probe in ("livenessProbe", "readinessProbe"):
                    p = c.get(probe)
                    if not p:
                        err(d, f"{where}: no {probe}")
                        continue
                    port = p.get("httpGet", {}).get("port")
                    if port is not None and port not in ports:
                        err(d, f"{where}: {probe} port {port} is not a named port")
            image = c["image"]
            if image.split("/")[-1].startswith("vouch-"):
                tags.add(image.rpartition(":")[2] if ":" in image else "")
            # Ports in the mounted TOML config match the container's ports.
            for m in c.get("volumeMounts", []):
                vol = next((v for v in pod.get("volumes", [])
                            if v["name"] == m["name"]), None)
                claims = {t["metadata"]["name"]
                          for t in d["spec"].get("volumeClaimTemplates", [])}
                if vol is None:
                    if m["name"] not in claims:
                        err(d, f"{where}: mounts unknown volume {m['name']}")
                    continue
                cm = vol.get("configMap", {}).get("name")
                if cm is None or cm not in configmaps or "subPath" not in m:
                    continue
                cfg = tomllib.loads(configmaps[cm]["data"][m["subPath"]])
                for section, key, port_name in (
                        ("verifier", "listen", "grpc"),
                        ("registrar", "listen", "grpc"),
                        ("metrics", "listen", "metrics")):
                    listen = cfg.get(section, {}).get(key)
                    if listen is None or "--verifier-listen" in c.get("args", []):
                        continue
                    if d["kind"] == "Job":
                        continue
                    if ports.get(port_name) != _port_of(listen):
                        err(d, f"{where}: {section}.{key} {listen} is not "
                               f"container port '{port_name}' {ports.get(port_name)}")
        for v in pod.get("volumes", []):
            if "configMap" in v and v["configMap"]["name"] not in configmaps:
                err(d, f"volume {v['name']}: ConfigMap {v['configMap']['name']} missing")
            if "secret" in v and v["secret"]["secretName"] not in secrets:
                err(d, f"volume {v['name']}: Secret {v['secret']['secretName']} "
                       "is neither rendered, issued by a Certificate nor documented")
        for c in pod["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] not in secrets:
                    err(d, f"env {e['name']}: Secret {ref['name']} unknown")
    if len(tags) > 1:
        errors.append(f"Vouch images have different tags: {sorted(tags)}")

    # The verifier pool.
    pods = [d for d in docs if d["kind"] in PROBED]
    verifier = next((d for d in by_kind.get("Deployment", [])
                     if d["metadata"]["name"] == "vouch-verifier"), None)
    if verifier is None:
        errors.append("no Deployment vouch-verifier")
    else:
        if verifier["spec"].get("replicas", 1) < 2:
            err(verifier, "fewer than 2 replicas")
        if not _pod(verifier).get("affinity", {}).get("podAntiAffinity"):
            err(verifier, "no podAntiAffinity")
        if not any(_selects(p["spec"]["selector"], _labels(verifier))
                   for p in by_kind.get("PodDisruptionBudget", [])):
            err(verifier, "no PodDisruptionBudget selects it")
        hpas = [h for h in by_kind.get("HorizontalPodAutoscaler", [])
                if h["spec"]["scaleTargetRef"]["name"] == "vouch-verifier"]
        if not hpas:
            err(verifier, "no HorizontalPodAutoscaler")
        for h in hpas:
            if h["spec"].get("minReplicas", 1) < 2:
                err(h, "minReplicas below 2")
    for p in by_kind.get("PodDisruptionBudget", []):
        if not any(_selects(p["spec"]["selector"], _labels(w)) for w in pods):
            err(p, "selects no pods")

    # Services and ServiceMonitors.
    for s in by_kind.get("Service", []):
        targets = [w for w in pods if _selects(s["spec"]["selector"], _labels(w))]
        if not targets:
            err(s, "selects no pods")
            continue
        names = {p["name"] for w in targets for c in _containers(w)
                 for p in c.get("ports", [])}
        for port in s["spec"]["ports"]:
            if isinstance(port.get("targetPort"), str) and port["targetPort"] not in names:
                err(s, f"targetPort {port['targetPort']} is no port of its pods")
    for m in by_kind.get("ServiceMonitor", []):
        services = [s for s in by_kind.get("Service", [])
                    if _selects(m["spec"]["selector"], s["metadata"].get("labels", {}))]
        if not services:
            err(m, "selects no Service")
        for e in m["spec"]["endpoints"]:
            for s in services:
                if e["port"] not in {p["name"] for p in s["spec"]["ports"]}:
                    err(m, f"port {e['port']} missing on Service {s['metadata']['name']}")

    # The agent on the node.
    agent = next((d for d in by_kind.get("DaemonSet", [])
                  if d["metadata"]["name"] == "vouch-agent"), None)
    if agent is None:
        errors.append("no DaemonSet vouch-agent")
    else:
        mounts = {m["mountPath"]: m for c in _containers(agent)
                  for m in c.get("volumeMounts", [])}
        if "/dev/tpmrm0" not in mounts:
            err(agent, "/dev/tpmrm0 not mounted")
        sfs = mounts.get("/sys/kernel/security")
        if not sfs or not sfs.get("readOnly"):
            err(agent, "securityfs not mounted read-only")
    return errors


# --- self-test: the check catches what it claims to ------------------------

def _find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


BREAKS = [
    ("verifier without readiness probe",
     lambda ds: _find(ds, "Deployment", "vouch-verifier")["spec"]["template"]["spec"]
     ["containers"][0].pop("readinessProbe"), "no readinessProbe"),
    ("registrar runs as root",
     lambda ds: (_find(ds, "Deployment", "vouch-registrar")["spec"]["template"]["spec"]
                 ["securityContext"].pop("runAsNonRoot"),
                 _find(ds, "Deployment", "vouch-registrar")["spec"]["template"]["spec"]
                 ["containers"][0]["securityContext"].pop("runAsNonRoot")),
     "runAsNonRoot is not set"),
    ("writable root filesystem",
     lambda ds: _find(ds, "Job", "vouch-migrate")["spec"]["template"]["spec"]
     ["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
     "readOnlyRootFilesystem is not true"),
    ("one verifier",
     lambda ds: _find(ds, "Deployment", "vouch-verifier")["spec"].update(replicas=1),
     "fewer than 2 replicas"),
    ("missing ConfigMap",
     lambda ds: ds.remove(next(d for d in ds if d["kind"] == "ConfigMap"
                               and d["metadata"]["name"].startswith("vouch-agent-config"))),
     "ConfigMap vouch-agent-config"),
    ("metrics port drift",
     lambda ds: _find(ds, "Deployment", "vouch-verifier")["spec"]["template"]["spec"]
     ["containers"][0]["ports"][1].update(containerPort=9999),
     "metrics.listen"),
    ("mixed image tags",
     lambda ds: _find(ds, "DaemonSet", "vouch-agent")["spec"]["template"]["spec"]
     ["containers"][0].update(image="vouch-agent:0.0.9"), "different tags"),
    ("no resources",
     lambda ds: _find(ds, "Deployment", "vouch-registrar")["spec"]["template"]["spec"]
     ["containers"][0].pop("resources"), "no resource requests"),
    ("securityfs writable",
     lambda ds: [m.pop("readOnly") for m in _find(ds, "DaemonSet", "vouch-agent")
                 ["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
                 if m["mountPath"] == "/sys/kernel/security"],
     "securityfs not mounted read-only"),
]


def self_test(docs):
    failures = []
    if check(docs):
        failures.append("the unbroken manifests already fail")
    for what, breaker, expect in BREAKS:
        broken = copy.deepcopy(docs)
        breaker(broken)
        found = check(broken)
        if not any(expect in e for e in found):
            failures.append(f"{what}: not caught (got {found})")
        else:
            print(f"caught: {what}")
    return failures


def main(argv):
    mode = argv[1] if len(argv) > 1 else "--source"
    have_kubectl = shutil.which("kubectl") is not None
    if mode == "--rendered" and not have_kubectl:
        print("SKIPPED: kubectl (with kustomize) is not installed here; "
              "the source check (kubernetes_manifests, check.py --source) still runs")
        return 77
    status = 0
    for overlay in OVERLAYS:
        if mode == "--source" or not have_kubectl:
            docs = assemble(os.path.join(ROOT, "overlays", overlay))
        else:
            docs = render_kustomize(overlay)
        problems = self_test(docs) if mode == "--self-test" else check(docs)
        kinds = sorted({d["kind"] for d in docs})
        how = "kustomize" if mode != "--source" and have_kubectl else "source"
        print(f"{overlay} ({mode[2:]}, {how}): {len(docs)} objects ({', '.join(kinds)}), "
              f"{len(problems)} problems")
        for p in problems:
            print(f"  {p}")
        status |= bool(problems)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
