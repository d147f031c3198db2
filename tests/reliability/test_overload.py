"""Overload: with a small --queue, the 503 + Retry-After answer comes within milliseconds and is the
only kind of refusal; a client that disconnects while its request is queued frees its slot at once
and its detection is never run."""
import http.client
import json
import os
import socket
import threading
import time

import cv2
import pytest

from conftest import (HOST, IMAGES, Server, assert_still_serving, good_body, http_request, percentile,
                      write_result)

LOAD_SECONDS = 8
CLIENTS = 12


def run_threads(target, count, timeout):
    """`count` threads running `target`, started together and joined within `timeout` s."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)


def big_body(id, w=6000, h=3000):
    """A large PNG photo: decoding it alone keeps a worker busy for about a second."""
    import base64
    img = cv2.resize(cv2.imread(os.path.join(IMAGES, "000000000025.jpg")), (w, h))
    ok, png = cv2.imencode(".png", img)
    return json.dumps({"id": id, "image": base64.b64encode(png.tobytes()).decode()}).encode()


@pytest.fixture(scope="module")
def server():
    s = Server("--queue", "2", "--max-wait", "60s", "--max-pixels", "20000000", "--max-body-bytes", "64000000")
    yield s
    assert s.stop() == 0, s.logs()[-3000:]


def test_503_at_saturation_is_fast_and_the_only_refusal(server):
    body = good_body(id="load")  # a 640x427 photo, 220 KB of JSON: a typical request
    results = []  # (status, seconds, retry_after, error_kind)
    lock = threading.Lock()
    deadline = time.monotonic() + LOAD_SECONDS

    def client():
        conn = None
        for _ in range(5000):  # bounded in count as well as in time
            if time.monotonic() >= deadline:
                break
            if conn is None:
                conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
            t0 = time.monotonic()
            try:
                conn.request("POST", "/api/object_detection", body=body, headers={"Content-Type": "application/json"})
                t_sent = time.monotonic()  # the whole request is in the socket
                r = conn.getresponse()
                answer = time.monotonic() - t_sent  # until the status line and headers arrived
                data = r.read()
                dt = time.monotonic() - t0
                kind = None
                if r.status == 200:
                    kind = None if json.loads(data).get("id") == "load" else "bad_body"
                elif r.status == 503:
                    kind = None if json.loads(data).get("error") else "bad_503_body"
                with lock:
                    results.append((r.status, dt, r.getheader("Retry-After"), kind, answer))
                if r.will_close:
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - every failure is counted
                with lock:
                    results.append((None, time.monotonic() - t0, None, type(e).__name__, None))
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    run_threads(client, CLIENTS, LOAD_SECONDS + 60)
    ok = [r for r in results if r[0] == 200]
    busy = [r for r in results if r[0] == 503]
    other = [r for r in results if r[0] not in (200, 503) or r[3] is not None]
    lat503 = [r[1] * 1000 for r in busy]  # client view: first byte sent -> body read (1.2 MB upload)
    ans503 = [r[4] * 1000 for r in busy]  # request fully sent -> response headers received
    lat200 = [r[1] * 1000 for r in ok]
    # Server view: the request log's duration_ms (first byte of the request -> response written).
    srv503 = [json.loads(line)["duration_ms"] for line in server.logs().splitlines()
              if line.startswith("{") and '"status":503' in line and '"path":"/api/object_detection"' in line]

    def r1(v):
        return round(v, 1) if v is not None else None

    record = {"clients": CLIENTS, "queue": 2, "seconds": LOAD_SECONDS, "body_bytes": len(body), "ok": len(ok),
              "rejected_503": len(busy), "other": len(other),
              "answer_p50_503_ms": r1(percentile(ans503, 50)), "answer_p99_503_ms": r1(percentile(ans503, 99)),
              "server_p50_503_ms": r1(percentile(srv503, 50)), "server_p99_503_ms": r1(percentile(srv503, 99)),
              "client_p50_503_ms": r1(percentile(lat503, 50)), "client_p99_503_ms": r1(percentile(lat503, 99)),
              "p50_200_ms": r1(percentile(lat200, 50))}
    write_result("overload_503_latency", record)
    assert not other, other[:5]
    assert ok and busy, record
    assert all(r[2] == "1" for r in busy), "every 503 carries Retry-After"
    # A 200 waits for a worker and the queue; a 503 does not wait at all: nearly every 503 is answered
    # sooner than the typical 200 (relative, so that a loaded CI machine does not make it flake; quiet,
    # the 503s take a few ms: RELIABILITY.md).
    for key in ("answer_p99_503_ms", "server_p99_503_ms", "client_p99_503_ms"):
        assert record[key] < record["p50_200_ms"], (key, record)
    assert server.metric("clouddetect_rejected_total", 'reason="queue"') >= len(busy)
    assert_still_serving(server)


def _send_only(port, data):
    s = socket.create_connection((HOST, port), timeout=30)
    s.sendall(data)
    return s


def _wait(pred, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_client_gone_while_queued_frees_its_slot_and_is_skipped(server):
    """queue=2, one worker. A blocker occupies the worker; two clients fill the queue and hang up.
    Their slots must be free at once (a third request is queued, not refused), their detections
    never run (inference count), and each is counted as client_gone."""
    gone0 = server.metric("clouddetect_rejected_total", 'reason="client_gone"')
    infer0 = server.metric("clouddetect_inference_duration_seconds_count")
    blocker_body = big_body("blocker")
    small = {i: http_request("POST", "/api/object_detection", good_body(id=i))
             for i in ("gone0", "gone1", "refused", "late")}
    blockers = [_send_only(server.port, http_request("POST", "/api/object_detection", blocker_body))]
    assert _wait(lambda: server.metric("clouddetect_workers_busy") >= 1, 10)
    quitters = [_send_only(server.port, small["gone%d" % i]) for i in range(2)]
    assert _wait(lambda: server.metric("clouddetect_queue_depth") == 2, 10), server.metrics()
    # The queue is full now: one more is refused at once.
    s = socket.create_connection((HOST, server.port), timeout=30)
    s.sendall(small["refused"])
    assert s.recv(100).startswith(b"HTTP/1.1 503"), "the queue should be full"
    s.close()
    t_close = time.monotonic()
    for q in quitters:
        q.close()
    # Their slots are freed while the blocker still runs.
    assert _wait(lambda: server.metric("clouddetect_queue_depth") == 0, 5), server.metrics()
    freed_ms = (time.monotonic() - t_close) * 1000
    assert server.metric("clouddetect_workers_busy") == 1, "the blocker should still be running"
    late = _send_only(server.port, small["late"])
    for b in blockers + [late]:
        b.settimeout(60)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = b.recv(65536)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data[:200]
        b.close()
    gone = server.metric("clouddetect_rejected_total", 'reason="client_gone"') - gone0
    assert _wait(lambda: server.metric("clouddetect_inference_duration_seconds_count") - infer0 >= 2, 10)
    inferences = server.metric("clouddetect_inference_duration_seconds_count") - infer0
    write_result("client_gone", {"queued_then_gone": 2, "client_gone_counted": gone, "inferences_run": inferences,
                                 "slot_freed_ms": round(freed_ms, 1)})
    assert gone == 2
    assert inferences == 2, "only the blocker and the late request ran"
    assert_still_serving(server)


def test_workers_plus_queue_closed_loop_users_are_all_served(server):
    """1 worker + --queue 2 = 3 requests in flight. Three clients that send again the moment they have
    an answer never exceed it, so none may get a 503: a job's slot is free before its answer is sent
    (WorkQueue::Completion). A fourth client does overflow (the control)."""
    body = good_body(id="closed-loop")

    def run(clients, seconds=4):
        statuses, lock = [], threading.Lock()
        deadline = time.monotonic() + seconds

        def client():
            conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
            while time.monotonic() < deadline:
                conn.request("POST", "/api/object_detection", body=body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                with lock:
                    statuses.append(r.status)
            conn.close()

        run_threads(client, clients, seconds + 60)
        return statuses

    at_capacity = run(3)
    print("3 clients: %d answers, %d x 503" % (len(at_capacity), at_capacity.count(503)))
    assert len(at_capacity) > 30 and set(at_capacity) == {200}, sorted(set(at_capacity))
    over = run(5)
    print("5 clients: %d answers, %d x 503" % (len(over), over.count(503)))
    assert 503 in over
