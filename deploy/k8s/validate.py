#!/usr/bin/python3
"""Render every kustomize overlay and check it: JSON schema of each object, then the invariants
the deployment depends on (0.5 CPU / 512Mi with requests = limits, probes on /healthz and /readyz
at the service port, port 5000 everywhere, downward-API pod identity, restrictive security).

Schemas: $CLOUDDETECT_SHARED/k8s-schemas/v1.30.0 (default: ../shared beside the repository),
named <kind>[-<group>]-<version>.json. Uses only the YAML and JSON Schema modules that scripts/deps.sh test installs.

usage: deploy/k8s/validate.py [--overlay NAME ...] [--self-test]
Prints PASS/FAIL per overlay and per self-test case, then "N passed, N failed"; exit 0 on success.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml

K8S_VERSION = "v1.30.0"
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CONTRACT = REPO / "docs" / "CONTRACT.md"
APP = "clouddetect"
NODE_PORT = 30500
CPU_MILLI = 500
MEMORY_BYTES = 512 * 1024**2
PROBE_PATHS = {"/healthz", "/readyz"}


class Invalid(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Invalid(message)


# ---- inputs ---------------------------------------------------------------------------------

def schema_dir() -> Path:
    sys.path.insert(0, str(REPO / "tools"))
    from devkit import shared_dir  # the one rule for $CLOUDDETECT_SHARED and its default

    shared = Path(shared_dir()).resolve()
    return shared / "k8s-schemas" / K8S_VERSION


def contract() -> tuple[int, set[str]]:
    """The default port and the CLOUDDETECT_* variable names, read from docs/CONTRACT.md."""
    text = CONTRACT.read_text()
    port = re.search(r"`CLOUDDETECT_PORT`,\s*`(\d+)`", text)
    check(port is not None, f"{CONTRACT}: no default for CLOUDDETECT_PORT")
    return int(port.group(1)), set(re.findall(r"CLOUDDETECT_[A-Z0-9_]+", text))


def render(overlay: Path) -> list[dict]:
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if kubectl:
        cmd = [kubectl, "kustomize", str(overlay)]
    elif shutil.which("kustomize"):
        cmd = ["kustomize", "build", str(overlay)]
    else:
        raise Invalid("neither kubectl nor kustomize is installed")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    check(result.returncode == 0, f"{' '.join(cmd)} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


# ---- schema ---------------------------------------------------------------------------------

_schemas: dict[str, dict] = {}


def schema_file(obj: dict) -> str:
    group, _, version = obj["apiVersion"].rpartition("/")
    parts = [obj["kind"].lower()] + ([group.split(".")[0]] if group else []) + [version]
    return "-".join(parts) + ".json"


def validate_schema(obj: dict) -> None:
    name = schema_file(obj)
    path = schema_dir() / name
    check(path.is_file(), f"{obj['kind']} {obj['metadata'].get('name')}: no schema {path}")
    if name not in _schemas:
        _schemas[name] = json.loads(path.read_text())
    validator = jsonschema.Draft4Validator(_schemas[name])
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    check(not errors, f"{obj['kind']} {obj['metadata'].get('name')}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:5]))


# ---- invariants -----------------------------------------------------------------------------

def cpu_milli(q) -> float:
    s = str(q)
    return float(s[:-1]) if s.endswith("m") else float(s) * 1000


def memory_bytes(q) -> float:
    s = str(q)
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for unit, factor in units.items():
        if s.endswith(unit):
            return float(s[: -len(unit)]) * factor
    return float(s)


def only(objs: list[dict], kind: str) -> dict:
    found = [o for o in objs if o["kind"] == kind]
    check(len(found) == 1, f"expected exactly one {kind}, found {len(found)}")
    return found[0]


def resolve_port(port, container: dict) -> int:
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    check(len(named) == 1, f"port name {port!r} is not a container port")
    return named[0]


def check_invariants(objs: list[dict], expected_replicas: int | None, default_port: int,
                     known_env: set[str]) -> int:
    """Raises Invalid on the first broken invariant; returns how many were checked."""
    checked = 0

    def ok(condition: bool, message: str) -> None:
        nonlocal checked
        check(condition, message)
        checked += 1

    dep = only(objs, "Deployment")
    svc = only(objs, "Service")
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"].get("labels", {})
    ok(labels.get("app") == APP, f"pod template lacks label app={APP} (kubectl logs -l app={APP})")
    ok(all(labels.get(k) == v for k, v in dep["spec"]["selector"]["matchLabels"].items()),
       "Deployment selector does not match its pod template")
    if expected_replicas is not None:
        ok(dep["spec"].get("replicas") == expected_replicas,
           f"replicas {dep['spec'].get('replicas')} != {expected_replicas}")
        ok(not any(o["kind"] == "HorizontalPodAutoscaler" for o in objs),
           "a fixed-replica overlay must not carry an HPA")

    containers = pod["containers"]
    ok(len(containers) == 1, f"expected one container, found {len(containers)}")
    c = containers[0]

    # Resources: Guaranteed QoS at exactly 0.5 CPU / 512 MiB.
    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        values = res.get(kind, {})
        ok(cpu_milli(values.get("cpu", 0)) == CPU_MILLI, f"{kind}.cpu {values.get('cpu')} != 500m")
        ok(memory_bytes(values.get("memory", 0)) == MEMORY_BYTES,
           f"{kind}.memory {values.get('memory')} != 512Mi")

    # Ports: container 5000 == contract default == Service targetPort.
    ports = [p["containerPort"] for p in c.get("ports", [])]
    ok(ports == [default_port], f"container ports {ports} != [{default_port}] (CONTRACT.md default)")
    env = {e["name"]: e for e in c.get("env", [])}
    if "CLOUDDETECT_PORT" in env:
        ok(env["CLOUDDETECT_PORT"].get("value") == str(default_port),
           f"CLOUDDETECT_PORT={env['CLOUDDETECT_PORT'].get('value')} != {default_port}")
    ok(svc["spec"].get("type") == "NodePort", "Service is not NodePort")
    svc_ports = svc["spec"]["ports"]
    ok(len(svc_ports) == 1, "Service must expose one port")
    sp = svc_ports[0]
    ok(resolve_port(sp.get("targetPort", sp["port"]), c) == default_port,
       f"Service targetPort {sp.get('targetPort')} does not reach container port {default_port}")
    ok(sp["port"] == default_port, f"Service port {sp['port']} != {default_port}")
    ok(sp.get("nodePort") == NODE_PORT, f"nodePort {sp.get('nodePort')} != {NODE_PORT} (documented)")
    ok(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
       "Service selector does not match the pod template")

    # Probes: all three, on real endpoints, at the serving port.
    for name, path in (("startupProbe", None), ("readinessProbe", "/readyz"),
                       ("livenessProbe", "/healthz")):
        probe = c.get(name)
        ok(probe is not None and "httpGet" in probe, f"{name} missing or not httpGet")
        got = probe["httpGet"].get("path")
        ok(got in PROBE_PATHS, f"{name} path {got!r} is not one of {sorted(PROBE_PATHS)}")
        if path:
            ok(got == path, f"{name} path {got!r} should be {path!r}")
        ok(resolve_port(probe["httpGet"]["port"], c) == default_port,
           f"{name} port {probe['httpGet']['port']} != {default_port}")

    # Pod identity in every log line (downward API), and only contract variables.
    for var, field in (("POD_NAME", "metadata.name"), ("NODE_NAME", "spec.nodeName")):
        ref = env.get(var, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        ok(ref == field, f"{var} must come from the downward API fieldRef {field}")
    unknown = sorted(n for n in env if n.startswith("CLOUDDETECT_") and n not in known_env)
    ok(not unknown, f"env {unknown} not in docs/CONTRACT.md")
    ok(pod.get("enableServiceLinks") is False,
       "enableServiceLinks must be false: Service `clouddetect` would inject CLOUDDETECT_PORT=tcp://...")

    # Graceful scale-down: preStop delay, then drain, all inside the grace period.
    pre_stop = c.get("lifecycle", {}).get("preStop", {})
    ok(bool(pre_stop), "no preStop hook")
    sleep_s = 0
    if "sleep" in pre_stop:
        sleep_s = int(pre_stop["sleep"]["seconds"])
    elif "exec" in pre_stop:
        cmd = pre_stop["exec"]["command"]
        ok(cmd[0].endswith("sleep") and len(cmd) == 2, f"preStop exec {cmd} is not a sleep")
        sleep_s = int(cmd[1])
    drain_s = int(env.get("CLOUDDETECT_DRAIN_SECONDS", {}).get("value", 0))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    ok(sleep_s >= 5, f"preStop sleep {sleep_s}s < 5s")
    ok(grace >= sleep_s + drain_s + 10,
       f"terminationGracePeriodSeconds {grace} < preStop {sleep_s} + drain {drain_s} + 10")

    # Spread over nodes.
    spread = pod.get("topologySpreadConstraints", [])
    ok(any(t["topologyKey"] == "kubernetes.io/hostname" and
           all(labels.get(k) == v for k, v in t["labelSelector"]["matchLabels"].items())
           for t in spread), "no topologySpreadConstraint over kubernetes.io/hostname for these pods")

    # Security.
    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    ok(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True, "runAsNonRoot not set")
    ok(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem not true")
    ok(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation not false")
    ok(not csc.get("privileged", False), "privileged container")
    ok("ALL" in csc.get("capabilities", {}).get("drop", []), "capabilities do not drop ALL")
    seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    ok(seccomp == "RuntimeDefault", f"seccompProfile {seccomp} != RuntimeDefault")
    ok(c.get("imagePullPolicy") in ("IfNotPresent", "Never"),
       f"imagePullPolicy {c.get('imagePullPolicy')} (no registry: IfNotPresent or Never)")
    return checked


# ---- runs -----------------------------------------------------------------------------------

def overlays() -> list[Path]:
    return sorted(p for p in (HERE / "overlays").iterdir() if (p / "kustomization.yaml").is_file())


def replicas_of(overlay: Path) -> int | None:
    m = re.fullmatch(r"replicas-(\d+)", overlay.name)
    return int(m.group(1)) if m else None


def validate_overlay(overlay: Path, default_port: int, known_env: set[str]) -> str:
    objs = render(overlay)
    for obj in objs:
        validate_schema(obj)
    n = check_invariants(objs, replicas_of(overlay), default_port, known_env)
    return f"{len(objs)} objects schema-valid, {n} invariant checks"


def _container(objs):
    return only(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


# Each case breaks one thing that must be caught (schema or invariant).
SELF_TESTS = {
    "cpu limit 1": lambda o: _container(o)["resources"]["limits"].update(cpu="1"),
    "memory request 256Mi": lambda o: _container(o)["resources"]["requests"].update(memory="256Mi"),
    "liveness on /metrics": lambda o: _container(o)["livenessProbe"]["httpGet"].update(path="/metrics"),
    "readiness on port 8080": lambda o: _container(o)["readinessProbe"]["httpGet"].update(port=8080),
    "service targetPort 8080": lambda o: only(o, "Service")["spec"]["ports"][0].update(targetPort=8080),
    "container port 8080": lambda o: _container(o)["ports"][0].update(containerPort=8080),
    "no NODE_NAME": lambda o: _container(o).update(
        env=[e for e in _container(o)["env"] if e["name"] != "NODE_NAME"]),
    "typo CLOUDDETECT_WORKER": lambda o: _container(o)["env"].append(
        {"name": "CLOUDDETECT_WORKER", "value": "1"}),
    "writable root": lambda o: _container(o)["securityContext"].update(readOnlyRootFilesystem=False),
    "unknown field (schema)": lambda o: _container(o).update(imagePullPolcy="Never"),
    "replicas as string (schema)": lambda o: only(o, "Deployment")["spec"].update(replicas="4"),
    "short grace period": lambda o: only(o, "Deployment")["spec"]["template"]["spec"].update(
        terminationGracePeriodSeconds=5),
}


def self_test(default_port: int, known_env: set[str]) -> tuple[int, int]:
    good = render(HERE / "overlays" / "replicas-4")
    passed = failed = 0
    for name, breaker in SELF_TESTS.items():
        objs = copy.deepcopy(good)
        breaker(objs)
        try:
            for obj in objs:
                validate_schema(obj)
            check_invariants(objs, 4, default_port, known_env)
        except Invalid as e:
            print(f"PASS self-test {name}: caught: {str(e)[:150]}")
            passed += 1
        else:
            print(f"FAIL self-test {name}: the broken manifest was accepted")
            failed += 1
    return passed, failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--overlay", action="append", help="overlay name under overlays/ (default: all)")
    ap.add_argument("--self-test", action="store_true", help="also check that broken manifests fail")
    args = ap.parse_args()

    if not schema_dir().is_dir():
        print(f"FAIL schemas not found at {schema_dir()} (set CLOUDDETECT_SHARED)")
        print("0 passed, 1 failed")
        return 1
    default_port, known_env = contract()
    chosen = [HERE / "overlays" / n for n in args.overlay] if args.overlay else overlays()
    passed = failed = 0
    for overlay in chosen:
        try:
            print(f"PASS {overlay.name}: {validate_overlay(overlay, default_port, known_env)}")
            passed += 1
        except (Invalid, OSError, subprocess.SubprocessError, yaml.YAMLError) as e:
            print(f"FAIL {overlay.name}: {e}")
            failed += 1
    if args.self_test:
        p, f = self_test(default_port, known_env)
        passed, failed = passed + p, failed + f
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
