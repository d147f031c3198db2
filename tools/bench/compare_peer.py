#!/usr/bin/python3
"""Our service vs the reference Flask+OpenCV service, each as a 0.5 CPU / 512 MiB pod, same load, one run.

  sudo /usr/bin/python3 tools/bench/compare_peer.py [--model yolov3-tiny|DIR] [--concurrency 1,4,16]
        [--duration 20] [--backend opencv] [--out results.json]

Both services get the same model and thresholds. For yolov3-tiny (no official weights here) a synthetic
weights file of the exact layout is written first (`clouddetect make-weights`); speed equals real
weights, but random class scores make ~1000 boxes survive NMS, so replies are large for both.
Uses $CLOUDDETECT_SHARED/bench/{pod.sh,loadgen.py,peer_flask_opencv/app.py}. Prints one JSON line per
(service, concurrency) and a table with the throughput ratio; exit 1 if any request failed.
"""
import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import devkit  # noqa: E402

SHARED = os.path.abspath(devkit.shared_dir())
BENCH = os.path.join(SHARED, "bench")
POD_SH = ["sh", os.path.join(BENCH, "pod.sh")]
PEER_APP = os.path.join(BENCH, "peer_flask_opencv", "app.py")
LOADGEN = os.path.join(BENCH, "loadgen.py")
PYTHON = "/usr/bin/python3"  # Debian's, with the peer's Flask and OpenCV


def model_files(args, workdir):
    src = args.model if os.path.isdir(args.model) else os.path.join(SHARED, "models", args.model)
    cfg = glob.glob(os.path.join(src, "*.cfg"))[0]
    names = glob.glob(os.path.join(src, "*.names"))[0]
    weights = glob.glob(os.path.join(src, "*.weights"))
    folder = os.path.join(workdir, "model")
    os.makedirs(folder)
    for f in (cfg, names):
        os.symlink(f, os.path.join(folder, os.path.basename(f)))
    if weights:
        os.symlink(weights[0], os.path.join(folder, os.path.basename(weights[0])))
        synthetic = False
    else:
        out = os.path.join(folder, os.path.basename(cfg).replace(".cfg", ".weights"))
        subprocess.run([args.binary, "make-weights", cfg, out], check=True, capture_output=True)
        synthetic = True
    size = 416
    for line in open(cfg):
        k = line.split("#")[0].split("=")
        if len(k) == 2 and k[0].strip() == "width":
            size = int(k[1])
    return folder, cfg, os.path.join(folder, os.path.basename(cfg).replace(".cfg", ".weights")), names, size, synthetic


def check_prerequisites(a):
    """Before any work: root for the pods' cgroups, the binary, the shared bench tools, the peer's modules."""
    if os.geteuid() != 0:
        sys.exit("compare_peer.py: needs root for the pods' cgroups (pod.sh): run it with sudo")
    if not os.access(a.binary, os.X_OK):
        sys.exit(f"compare_peer.py: {a.binary} is missing: build it with scripts/build.sh")
    devkit.require("compare_peer.py", "experiment",
                   devkit.missing_prerequisites(files=[POD_SH[1], PEER_APP, LOADGEN])
                   + devkit.missing_prerequisites(modules=["flask", "cv2", "numpy"], python=PYTHON))


def free_port():
    with socket.socket() as s:
        s.bind((devkit.LOOPBACK, 0))
        return s.getsockname()[1]


def start_in_pod(name, service):
    """service(prefix) starts it as pod `name` (pod.sh: 0.5 CPU / 512 MiB) and returns the devkit.Service."""
    subprocess.run(POD_SH + ["--rm", name], capture_output=True)
    return service(POD_SH + [name, "--"])


def pod_stat(name):
    out = subprocess.run(POD_SH + ["--stat", name], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="yolov3-tiny")
    ap.add_argument("--binary", default=devkit.clouddetect_binary())
    ap.add_argument("--backend", default="opencv")
    ap.add_argument("--precision", default="fp32", help="fp32 | int8 (native; calibrated on coco128 first)")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--conf", default="0.5")
    ap.add_argument("--nms", default="0.45")
    ap.add_argument("--out", help="also write all results to this JSON file")
    a = ap.parse_args()
    check_prerequisites(a)

    workdir = tempfile.mkdtemp(prefix="compare-peer-")
    folder, cfg, weights, names, size, synthetic = model_files(a, workdir)
    images = os.path.join(SHARED, "data", "coco128", "images")
    calibration = os.path.join(workdir, "activation-ranges.json")
    if a.precision == "int8":  # outside the pod: calibration is an offline step
        subprocess.run([a.binary, "calibrate", "--model", folder, "--images", images, "--out", calibration], check=True)
    common = ["--conf", a.conf, "--nms", a.nms, "--log-format", "text"]
    ours = ["--backend", a.backend, "--precision", a.precision] + (
        ["--calibration", calibration] if a.precision == "int8" else [])
    peer_env = {"MODEL_CFG": cfg, "MODEL_WEIGHTS": weights, "MODEL_NAMES": names, "INPUT_SIZE": str(size),
                "CONF_THRESHOLD": a.conf, "NMS_THRESHOLD": a.nms, "HOST": devkit.LOOPBACK}

    def clouddetect(prefix):
        return devkit.ClouddetectService(*common, *ours, model=folder, binary=a.binary, prefix=prefix,
                                         log_path="/tmp/compare-clouddetect.log", ready_timeout=120)

    def flask_opencv(prefix):
        port = free_port()
        return devkit.Service(prefix + [PYTHON, PEER_APP], port=port, env=dict(peer_env, PORT=str(port)),
                              log_path="/tmp/compare-flask_opencv.log", ready_timeout=120)

    services = {"clouddetect": clouddetect, "flask_opencv": flask_opencv}
    results = []
    try:
        for c in [int(x) for x in a.concurrency.split(",")]:
            for name, service in services.items():
                svc = start_in_pod("cmp-" + name, service)
                try:
                    out = subprocess.run([PYTHON, LOADGEN, "--url", svc.base_url + "/api/object_detection",
                                          "--images", images, "--concurrency", str(c), "--duration", str(a.duration),
                                          "--warmup", str(a.warmup)], check=True, capture_output=True, text=True)
                    line = json.loads(out.stdout.strip().splitlines()[-1])
                    stat = pod_stat("cmp-" + name)
                finally:
                    svc.stop()
                    subprocess.run(POD_SH + ["--rm", "cmp-" + name], capture_output=True)
                row = {"service": name, "model": os.path.basename(cfg)[:-4], "synthetic_weights": synthetic,
                       "backend": a.backend if name == "clouddetect" else "opencv-python",
                       "precision": a.precision if name == "clouddetect" else "fp32", "concurrency": c,
                       "rps": line["rps"], "ok": line["ok"], "errors": line["errors"], "p50_ms": line["p50_ms"],
                       "p99_ms": line["p99_ms"], "mem_peak_mib": round(stat.get("mem_peak_bytes", 0) / 2**20, 1),
                       "oom_kill": stat.get("oom_kill"), "error_kinds": line.get("error_kinds")}
                results.append(row)
                print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print("\n%-5s %-14s %8s %8s %8s %9s %7s %9s" % ("conc", "service", "rps", "p50 ms", "p99 ms", "mem MiB", "errors",
                                                    "ratio"))
    failed = False
    for c in sorted({r["concurrency"] for r in results}):
        rows = {r["service"]: r for r in results if r["concurrency"] == c}
        peer = rows.get("flask_opencv", {}).get("rps") or 0
        for name, r in rows.items():
            ratio = r["rps"] / peer if peer else float("nan")
            failed |= r["errors"] > 0
            print("%-5d %-14s %8.2f %8.1f %8.1f %9.1f %7d %8.2fx" % (
                c, name, r["rps"], r["p50_ms"] or 0, r["p99_ms"] or 0, r["mem_peak_mib"], r["errors"], ratio))
    if a.out:
        json.dump(results, open(a.out, "w"), indent=1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
