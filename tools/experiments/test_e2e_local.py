"""End-to-end: a short real experiment with the local target (1 and 2 pods of the service in
0.5 CPU / 512 MiB cgroups behind HAProxy, the small yolo-fastest-1.1 model, small user steps).

Service under test: $CLOUDDETECT_BIN (path to the clouddetect binary), started as
    $CLOUDDETECT_BIN serve --model {model} --host 127.0.0.1 --port 0 --port-file {port_file} \
        $CLOUDDETECT_E2E_SERVICE_ARGS
with CLOUDDETECT_E2E_SERVICE_ARGS defaulting to "--queue 4": a small queue makes each pod answer 503
beyond 1 worker + 4 waiting requests, so the first failure comes after a few users per pod and scales
with the pods whatever else runs on the machine. Any other service with the same API can be tested with
CLOUDDETECT_E2E_SERVICE_CMD (a --service-cmd template) and CLOUDDETECT_E2E_TIMEOUT (request timeout in s,
needed by services without a bounded queue, e.g. the Flask peer). Takes about 3-5 minutes; needs root
(cgroups) and what scripts/deps.sh experiment installs (Locust, HAProxy, Matplotlib).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import analysis  # noqa: E402
import devkit  # noqa: E402

SHARED = devkit.shared_dir()
MODEL = os.path.join(SHARED, "models", "yolo-fastest-1.1")
IMAGES = os.path.join(SHARED, "data", "coco128", "images")
RUNNER = os.path.join(HERE, "run_experiment.py")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def service_cmd():
    cmd = os.environ.get("CLOUDDETECT_E2E_SERVICE_CMD")
    if cmd:
        return cmd
    binary = os.environ.get("CLOUDDETECT_BIN")
    if not binary:
        pytest.skip("CLOUDDETECT_BIN is not set (path to the clouddetect binary); "
                    "or set CLOUDDETECT_E2E_SERVICE_CMD to a --service-cmd template")
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        pytest.skip(f"CLOUDDETECT_BIN={binary} is not an executable file (build it first)")
    extra = os.environ.get("CLOUDDETECT_E2E_SERVICE_ARGS", "--queue 4")
    return f"{binary} serve --model {{model}} --host 127.0.0.1 --port 0 --port-file {{port_file}} {extra}"


def preconditions():
    if os.geteuid() != 0:
        pytest.skip("needs root for the pods' cgroups")
    if not os.path.isdir("/sys/fs/cgroup/cpu") or not os.path.isdir("/sys/fs/cgroup/memory"):
        pytest.skip("needs cgroup v1 cpu and memory hierarchies")
    missing = devkit.missing_prerequisites(programs=["haproxy"], modules=["locust", "matplotlib"], python=PY)
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (scripts/deps.sh experiment)")
    if not os.path.isdir(MODEL) or not os.path.isdir(IMAGES):
        pytest.skip(f"model {MODEL} or images {IMAGES} missing (set CLOUDDETECT_SHARED)")


def runner_args(out, cmd):
    args = [PY, RUNNER, "run", "--target", "local", "--location", "master", "--out", str(out),
            "--pods", "1,2", "--repetitions", "1", "--model", MODEL, "--images", IMAGES, "--service-cmd", cmd,
            "--ramp-step", "2", "--ramp-step-seconds", "3", "--ramp-max-users", "40", "--ramp-max-seconds", "90",
            "--settle-seconds", "2", "--stable-window-seconds", "4", "--stable-windows", "2",
            "--stable-tolerance", "0.3", "--confirm-max-seconds", "24", "--confirm-max-attempts", "4",
            "--cooldown-seconds", "1", "--progress-interval", "10"]
    timeout = os.environ.get("CLOUDDETECT_E2E_TIMEOUT",
                             "" if not os.environ.get("CLOUDDETECT_E2E_SERVICE_CMD") else "2")
    args += ["--request-timeout", timeout or "10"]
    return args


def our_pod_cgroups(pid):
    found = []
    for c in ("cpu", "cpuacct", "memory"):
        for root, dirs, _ in os.walk(f"/sys/fs/cgroup/{c}"):
            found += [os.path.join(root, d) for d in dirs if d.startswith(f"clouddetect-exp-{pid}-")]
    return found


def test_local_experiment_1_and_2_pods(tmp_path):
    cmd = service_cmd()
    preconditions()
    out = tmp_path / "exp"
    t0 = time.time()
    proc = subprocess.Popen(runner_args(out, cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        stdout, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)
    print(stdout[-8000:])
    assert proc.returncode == 0, stdout[-4000:]
    assert time.time() - t0 < 600

    for f in ("results.csv", "results.json", "table.md", "report.md", "users_vs_response_time.png",
              "max_users_vs_pods.png", "throughput_vs_pods.png"):
        assert (out / f).is_file() and (out / f).stat().st_size > 100, f
    for f in ("users_vs_response_time.png", "max_users_vs_pods.png", "throughput_vs_pods.png"):
        assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    data = json.loads((out / "results.json").read_text())
    runs = sorted(data["runs"], key=lambda r: r["pods"])
    assert [(r["pods"], r["status"]) for r in runs] == [(1, "done"), (2, "done")]
    for r in runs:
        assert r["ramp_censored"] is False, "the ramp must reach a failure with these settings"
        assert 1 <= r["max_users"] <= r["ramp_first_fail_users"] - 1
        assert 0 < r["avg_response_ms"] < 10000
        assert r["rps"] > 0 and r["measure_requests"] > 0
        assert r["host_cpu_mean"] is None or 0 <= r["host_cpu_mean"] <= 1
        assert r["pod_oom_kills"] == 0
        assert r["ramp_curve"] and all(c["users"] >= 1 for c in r["ramp_curve"])
    agg = analysis.aggregate(data["runs"])
    # more pods -> not fewer max users, within noise (25% + 1 user)
    assert analysis.scaling_monotonic(agg, "master", tolerance=0.25), [r["max_users"] for r in runs]

    csv_lines = (out / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 3 and csv_lines[0].startswith("location,target,pods,rep,status,max_users")
    table = (out / "table.md").read_text()
    assert table.startswith("| Client | Metric | 1 pod | 2 pods |")
    assert f"| master | Max Users | {runs[0]['max_users']}" in table
    report_md = (out / "report.md").read_text()
    assert "emulation" in report_md and "CPU" in report_md

    # nothing left behind
    assert our_pod_cgroups(proc.pid) == []


def test_interrupt_cleans_up(tmp_path):
    cmd = service_cmd()
    preconditions()
    out = tmp_path / "exp"
    args = runner_args(out, cmd)
    args[args.index("--pods") + 1] = "1"
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    deadline = time.time() + 120
    try:
        for line in proc.stdout:
            seen.append(line)
            if ": ramp " in line or time.time() > deadline:
                break
        time.sleep(4)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, "".join(seen) + (rest or "")
    assert our_pod_cgroups(proc.pid) == []
    assert (out / "results.json").is_file()
    leftovers = subprocess.run(["pgrep", "-f", str(out)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], f"processes still running for {out}: {leftovers}"
