"""KubernetesTarget against a fake kubectl: scaling waits for exactly N Ready pods."""

import json
import os
import stat
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import targets  # noqa: E402


def pod(name, ready=True, terminating=False, restarts=0):
    p = {"metadata": {"name": name}, "status": {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [{"restartCount": restarts}]}}
    if terminating:
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return p


def test_count_ready_ignores_terminating_but_counts_them_in_total():
    pods = [pod("a"), pod("b", ready=False), pod("c", terminating=True)]
    assert targets.KubernetesTarget.count_ready(pods) == (1, 3)


FAKE = r'''#!/usr/bin/python3
import json, os, sys
d = os.environ["FAKE_KUBE_DIR"]
args = sys.argv[1:]
with open(os.path.join(d, "calls.log"), "a") as fh:
    fh.write(" ".join(args) + "\n")
if "scale" in args:
    sys.exit(0)
if "deployment" in args:
    print(json.dumps({"spec": {"selector": {"matchLabels": {"app": "clouddetect"}},
        "template": {"spec": {"containers": [{"image": "clouddetect:test",
            "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}},
            "env": [{"name": "CLOUDDETECT_MODEL", "value": "/models/yolo-fastest-1.1"}]}]}}}}))
    sys.exit(0)
if "pods" in args:
    n = int(open(os.path.join(d, "n")).read()) if os.path.exists(os.path.join(d, "n")) else 0
    open(os.path.join(d, "n"), "w").write(str(n + 1))
    seq = json.load(open(os.path.join(d, "pods.json")))
    print(json.dumps({"items": seq[min(n, len(seq) - 1)]}))
    sys.exit(0)
sys.exit(2)
'''


def test_scale_waits_for_exactly_n_ready_pods(tmp_path, monkeypatch):
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE)
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    # poll 1: 2 ready + 1 still terminating (scale-down in progress); poll 2: exactly 2 ready
    seq = [[pod("a"), pod("b"), pod("c", terminating=True)], [pod("a"), pod("b", restarts=1)]]
    (tmp_path / "pods.json").write_text(json.dumps(seq))
    monkeypatch.setenv("FAKE_KUBE_DIR", str(tmp_path))
    monkeypatch.setattr(targets.time, "sleep", lambda s: None)
    t = targets.KubernetesTarget("http://127.0.0.1:30080", "clouddetect", "ns1", kubectl=str(kubectl),
                                 scale_script=str(tmp_path / "absent.sh"), ready_timeout=30)
    t.scale(2)
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert "-n ns1 scale deployment/clouddetect --replicas=2" in calls
    assert any("get pods -l app=clouddetect -o json" in c for c in calls)
    d = t.describe()
    assert d["image"] == "clouddetect:test" and d["pod_cpu"] == "500m" and d["model"] == "/models/yolo-fastest-1.1"
    assert t.ensure(2) == 0


def test_scale_uses_the_cluster_script_when_present(tmp_path, monkeypatch):
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE)
    kubectl.chmod(0o755)
    (tmp_path / "pods.json").write_text(json.dumps([[pod("a")]]))
    script = tmp_path / "scale.sh"
    script.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/script.args\n')
    script.chmod(0o755)
    monkeypatch.setenv("FAKE_KUBE_DIR", str(tmp_path))
    t = targets.KubernetesTarget("http://127.0.0.1:30080", "cd", "ns2", kubectl=str(kubectl),
                                 scale_script=str(script), ready_timeout=30)
    t.scale(1)
    assert (tmp_path / "script.args").read_text().split() == [
        "--replicas", "1", "--namespace", "ns2", "--deployment", "cd", "--timeout", "30"]
    assert "scale" not in (tmp_path / "calls.log").read_text()
