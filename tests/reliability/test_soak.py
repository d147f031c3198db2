"""Soak: the service in a 0.5 CPU / 512 MiB pod (pod.sh, cgroup v1) at saturation for
RELIABILITY_SOAK_SECONDS (default 60; 600 for the benchmark). RSS is sampled every second; after the
warm-up (the first 20 %, at least 10 s) it must grow less than 5 %; the only errors allowed are the
designed 503s. Writes soak_rss.csv and soak_rss.png into RELIABILITY_OUT."""
import csv
import glob
import http.client
import json
import os
import subprocess
import threading
import time
import uuid

import pytest

from conftest import HOST, IMAGES, OUT, SHARED, Server, write_result

SECONDS = float(os.environ.get("RELIABILITY_SOAK_SECONDS", "60"))
CLIENTS = int(os.environ.get("RELIABILITY_SOAK_CLIENTS", "8"))
POD = os.path.join(SHARED, "bench", "pod.sh")


def cgroups_usable():
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists(POD):
        return "no %s" % POD
    for c in ("cpu", "memory"):
        if not os.path.isdir("/sys/fs/cgroup/" + c):
            return "no cgroup v1 %s controller" % c
    return None


def bodies(n=16):
    import base64
    files = sorted(glob.glob(os.path.join(IMAGES, "*.jpg")))[:n]
    out = []
    for f in files:
        rid = os.path.basename(f)
        with open(f, "rb") as fh:
            out.append((rid, json.dumps({"id": rid, "image": base64.b64encode(fh.read()).decode()}).encode()))
    return out


def test_soak_in_a_pod():
    why = cgroups_usable()
    if why:
        pytest.skip("cgroups unavailable: " + why)
    name = "clouddetect-soak-" + uuid.uuid4().hex[:6]
    server = Server("--queue", "4", prefix=("/bin/sh", POD, name, "--"), ready_timeout=120)
    # With pod.sh (exec) the server keeps the PID of /bin/sh: the pid we sample is the server's.
    reqs = bodies()
    lock = threading.Lock()
    counts = {"ok": 0, "rejected_503": 0, "errors": 0}
    kinds = {}
    t_start = time.monotonic()
    deadline = t_start + SECONDS

    def client(w):
        conn = None
        k = w
        while time.monotonic() < deadline:
            rid, body = reqs[k % len(reqs)]
            k += 1
            if conn is None:
                conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
            kind = None
            try:
                conn.request("POST", "/api/object_detection", body=body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                if r.status == 503 and r.getheader("Retry-After"):
                    kind = "503"
                elif r.status != 200 or json.loads(data).get("id") != rid:
                    kind = "http_%d" % r.status
                if r.will_close:
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - counted
                kind = type(e).__name__
                conn.close()
                conn = None
            with lock:
                if kind is None:
                    counts["ok"] += 1
                elif kind == "503":
                    counts["rejected_503"] += 1
                else:
                    counts["errors"] += 1
                    kinds[kind] = kinds.get(kind, 0) + 1
            if kind == "503":
                time.sleep(0.01)  # a polite client honours Retry-After loosely; still saturating
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    samples = []  # (t, rss_kib, ok_so_far)
    try:
        for t in threads:
            t.start()
        while time.monotonic() < deadline:
            samples.append((round(time.monotonic() - t_start, 2), server.rss_kib(), counts["ok"]))
            time.sleep(1.0)
        for t in threads:
            t.join(90)
        stat = subprocess.run(["/bin/sh", POD, "--stat", name], capture_output=True, text=True).stdout.strip()
        code = server.stop()
    finally:
        server.kill()
        subprocess.run(["/bin/sh", POD, "--rm", name], capture_output=True)

    os.makedirs(OUT, exist_ok=True)
    csv_path = os.path.join(OUT, "soak_rss.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seconds", "rss_kib", "ok_requests"])
        w.writerows(samples)
    warm = max(10.0, 0.2 * SECONDS)
    after = [s for s in samples if s[0] >= warm]
    window = max(3, len(after) // 10)
    base = sorted(s[1] for s in after[:window])[window // 2]
    end = sorted(s[1] for s in after[-window:])[window // 2]
    peak = max(s[1] for s in after)
    growth = (end - base) / base * 100
    png_path = os.path.join(OUT, "soak_rss.png")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.plot([s[0] for s in samples], [s[1] / 1024 for s in samples], label="RSS (MiB)")
        ax.axvline(warm, color="grey", linestyle="--", label="end of warm-up")
        ax.set_xlabel("seconds")
        ax.set_ylabel("RSS MiB")
        ax.set_ylim(bottom=0)
        ax.set_title("clouddetect in a 0.5 CPU / 512 MiB pod, %d clients, %.0f s: growth %.2f %%" %
                     (CLIENTS, SECONDS, growth))
        ax.legend()
        fig.tight_layout()
        fig.savefig(png_path, dpi=100)
    except ImportError:
        png_path = None
    record = dict(counts, error_kinds=kinds, seconds=SECONDS, clients=CLIENTS, warmup_s=warm,
                  rss_base_mib=round(base / 1024, 1), rss_end_mib=round(end / 1024, 1),
                  rss_peak_mib=round(peak / 1024, 1), growth_pct=round(growth, 2),
                  ok_rps=round(counts["ok"] / SECONDS, 2), pod_stat=json.loads(stat) if stat else None,
                  exit_code=code, csv=csv_path, png=png_path)
    write_result("soak", record)
    print("soak RSS curve: %s %s" % (csv_path, png_path or "(no matplotlib)"))
    assert code == 0
    assert counts["errors"] == 0, kinds
    assert counts["ok"] > 0
    assert growth < 5.0, record
    if record["pod_stat"]:
        assert record["pod_stat"]["oom_kill"] in (0, "0", None)
