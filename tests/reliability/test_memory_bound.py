"""Memory admission: the service in one 0.5 CPU / 512 MiB pod (pod.sh, cgroup v1) with
yolo-fastest-1.1-xl; N clients each POST the same valid 24-megapixel JPEG (a ~12 MB body) at once,
then thousands of connections each POST a small photo. Every answer must be 200 or 503 (with
Retry-After), the pod must never be OOM-killed and its peak memory stays under the limit.

RELIABILITY_MEMORY_N (default "16,64"; the full proof: "16,64,256") and RELIABILITY_MEMORY_SMALL
(connections with small photos, default 2000) set the load. Results: $RELIABILITY_OUT/results.jsonl."""
import base64
import json
import os
import re
import socket
import subprocess
import threading
import time
import uuid

import cv2
import numpy as np
import pytest

from conftest import BINARY, HOST, IMAGES, Server, good_body, parse_responses, raise_nofile, write_result
from test_soak import POD, cgroups_usable

SIZES = [int(n) for n in os.environ.get("RELIABILITY_MEMORY_N", "16,64").split(",")]
SMALL = int(os.environ.get("RELIABILITY_MEMORY_SMALL", "2000"))


def default_max_wait_s():
    """serve's --max-wait default, from its --help: the proof runs the configuration users get."""
    text = subprocess.run([BINARY, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"--max-wait TEXT=(\d+)ms", text)
    assert match, "serve --help shows no --max-wait default"
    return int(match.group(1)) / 1000


MAX_WAIT_S = default_max_wait_s()


def big_jpeg_body():
    """A coco128 photo upscaled to 6000x4000 (24 MP) with fine noise, so that its JPEG is ~9 MB (a ~12 MB body)."""
    img = cv2.resize(cv2.imread(os.path.join(IMAGES, "000000000025.jpg")), (6000, 4000), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(0).integers(-12, 13, img.shape, dtype=np.int16)
    img = np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 93])
    assert ok
    return json.dumps({"id": "big", "image": base64.b64encode(jpeg.tobytes()).decode()}).encode()


def post_once(port, body, timeout=180):
    """One POST on a new connection; returns (status or error name, seconds, retry_after). A 503
    sent before the body is read is still read when the upload fails (the server lingers)."""
    head = ("POST /api/object_detection HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)).encode()
    t0 = time.monotonic()
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        try:
            s.sendall(head + body)
        except OSError:
            pass  # refused from its header: the answer is already there
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            if not data:
                return type(e).__name__, time.monotonic() - t0, None
        answers = parse_responses(data)
        if not answers:
            return "no_answer", time.monotonic() - t0, None
        status, headers, _ = answers[0]
        return status, time.monotonic() - t0, headers.get("retry-after")
    finally:
        s.close()


def run_clients(port, body, n):
    results, lock = [], threading.Lock()

    def client():
        r = post_once(port, body)
        with lock:
            results.append(r)

    threading.stack_size(256 * 1024)
    threads = [threading.Thread(target=client) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return results


def served_waits(server):
    """(queue_ms, duration_ms) of every 200 detection in the server's log."""
    out = []
    for line in server.logs().splitlines():
        if line.startswith("{") and '"path":"/api/object_detection"' in line and '"status":200' in line:
            entry = json.loads(line)
            out.append((entry.get("queue_ms", 0), entry["duration_ms"]))
    return out


def pod_stat(name):
    return json.loads(subprocess.check_output(["/bin/sh", POD, "--stat", name], text=True))


@pytest.mark.parametrize("n", SIZES)
def test_big_images_never_oom_kill_the_pod(n):
    why = cgroups_usable()
    if why:
        pytest.skip("cgroups unavailable: " + why)
    raise_nofile(n * 2 + 256)
    name = "clouddetect-mem-" + uuid.uuid4().hex[:6]
    body = big_jpeg_body()
    server = Server(model="yolo-fastest-1.1-xl", prefix=("/bin/sh", POD, name, "--"), ready_timeout=180)
    try:
        results = run_clients(server.port, body, n)
        alive = server.proc.poll() is None
        stat = pod_stat(name)
        statuses = {}
        for status, _, _ in results:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        ok_s = sorted(r[1] for r in results if r[0] == 200)
        waits = served_waits(server)
        record = {"n": n, "max_queue_ms_200": round(max((w for w, _ in waits), default=0), 1),
                  "body_mb": round(len(body) / 1e6, 1), "statuses": statuses,
                  "peak_mib": round(stat["mem_peak_bytes"] / 2**20, 1), "limit_mib": stat["mem_limit_bytes"] >> 20,
                  "oom_kill": stat["oom_kill"], "failcnt": stat["mem_failcnt"], "alive": alive,
                  "slowest_200_s": round(ok_s[-1], 2) if ok_s else None,
                  "no_retry_after": sum(1 for r in results if r[0] == 503 and not r[2])}
        write_result("memory_bound_big_images", record)
        assert alive and stat["oom_kill"] == 0, record
        assert set(statuses) <= {"200", "503"}, record
        assert record["no_retry_after"] == 0, record
        assert stat["mem_peak_bytes"] < stat["mem_limit_bytes"], record
        assert statuses.get("200", 0) >= 1, record
        # Admitted work starts within --max-wait (a later start is answered 503 without running).
        assert record["max_queue_ms_200"] <= MAX_WAIT_S * 1000 + 50, record
    finally:
        server.stop()
        subprocess.call(["/bin/sh", POD, "--rm", name])


def test_thousands_of_small_requests_never_oom_kill_the_pod():
    why = cgroups_usable()
    if why:
        pytest.skip("cgroups unavailable: " + why)
    raise_nofile(SMALL * 2 + 256)
    name = "clouddetect-mem-" + uuid.uuid4().hex[:6]
    server = Server(model="yolo-fastest-1.1-xl", prefix=("/bin/sh", POD, name, "--"), ready_timeout=180,
                    nofile=SMALL * 2 + 256)
    try:
        results = run_clients(server.port, good_body(id="small"), SMALL)
        alive = server.proc.poll() is None
        stat = pod_stat(name)
        statuses = {}
        for status, _, _ in results:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        ok_s = sorted(r[1] for r in results if r[0] == 200)
        service_s = server.metric("clouddetect_service_seconds")
        waits = served_waits(server)
        record = {"connections": SMALL, "max_queue_ms_200": round(max((w for w, _ in waits), default=0), 1),
                  "statuses": statuses, "peak_mib": round(stat["mem_peak_bytes"] / 2**20, 1),
                  "oom_kill": stat["oom_kill"], "alive": alive, "service_s": round(service_s, 4),
                  "slowest_200_s": round(ok_s[-1], 2) if ok_s else None}
        write_result("memory_bound_small_images", record)
        assert alive and stat["oom_kill"] == 0, record
        assert set(statuses) <= {"200", "503"}, record
        assert statuses.get("200", 0) >= 1, record
        assert record["max_queue_ms_200"] <= MAX_WAIT_S * 1000 + 50, record
    finally:
        server.stop()
        subprocess.call(["/bin/sh", POD, "--rm", name])
