"""Graceful shutdown under load: 8 keep-alive clients run; SIGTERM with --drain-seconds 2.

What counts (documented in RELIABILITY.md):
- ok: HTTP 200 with the request's own id.
- not accepted: connect() refused (ECONNREFUSED) - the listener is closed; the client must send
  the request elsewhere. Nothing was lost: the server never saw it.
- failure: anything else - a reset or closed connection, a timeout, any other status, a wrong body.
Expected: /readyz 503 within milliseconds of SIGTERM, zero failures, exit code 0 within drain + 5 s.
"""
import http.client
import json
import signal
import threading
import time


from conftest import HOST, Server, good_body, write_result

CLIENTS = 8
DRAIN = 2
LOAD_BEFORE = 3.0


def run_shutdown_under_load():
    server = Server("--drain-seconds", str(DRAIN), "--queue", "64", "--max-wait", "60s")
    body = good_body(id="sd")
    lock = threading.Lock()
    counts = {"ok": 0, "refused": 0, "failures": 0, "ok_after_sigterm": 0, "reconnects": 0}
    failures = []
    stop = threading.Event()
    sigterm_at = [None]

    def client(n):
        conn = None
        for _ in range(100000):  # bounded; the loop ends at the first refused connect
            if stop.is_set():
                break
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
                    conn.connect()
                    with lock:
                        counts["reconnects"] += 1
            except ConnectionRefusedError:
                with lock:
                    counts["refused"] += 1
                break
            try:
                conn.request("POST", "/api/object_detection", body=body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                good = r.status == 200 and json.loads(data).get("id") == "sd"
                with lock:
                    if good:
                        counts["ok"] += 1
                        if sigterm_at[0] is not None:
                            counts["ok_after_sigterm"] += 1
                    else:
                        counts["failures"] += 1
                        failures.append(("status", r.status, data[:200]))
                if r.will_close:
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 - every failure is counted
                with lock:
                    counts["failures"] += 1
                    failures.append(("exception", type(e).__name__, str(e), time.monotonic() - (sigterm_at[0] or 0)))
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(LOAD_BEFORE)
    ok_before = counts["ok"]
    sigterm_at[0] = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    # Readiness turns 503 at once (new connections are still accepted during the drain).
    ready_503_ms = None
    for _ in range(200):
        try:
            status = server.get("/readyz")[0]
        except OSError:
            break
        if status == 503:
            ready_503_ms = (time.monotonic() - sigterm_at[0]) * 1000
            break
        time.sleep(0.005)
    try:
        code = server.proc.wait(DRAIN + 10)
    except Exception:  # noqa: BLE001
        server.kill()
        code = "timeout"
    exit_s = time.monotonic() - sigterm_at[0]
    stop.set()
    for t in threads:
        t.join(30)
    record = dict(counts, ok_before_sigterm=ok_before, clients=CLIENTS, drain_seconds=DRAIN,
                  ready_503_ms=round(ready_503_ms, 1) if ready_503_ms is not None else None,
                  exit_code=code, exit_seconds=round(exit_s, 2), failure_samples=failures[:5])
    return server, record


def test_sigterm_under_load_loses_nothing_and_exits_zero():
    server, record = run_shutdown_under_load()
    write_result("shutdown_under_load", record)
    assert record["exit_code"] == 0, server.logs()[-3000:]
    assert record["failures"] == 0, record
    assert record["ready_503_ms"] is not None and record["ready_503_ms"] < 200, record
    assert DRAIN - 0.5 <= record["exit_seconds"] <= DRAIN + 5, record
    assert record["ok_after_sigterm"] > 0, "requests during the drain are served"
    assert record["refused"] == CLIENTS, "every client ends by being refused (listener closed)"
    logs = server.logs()
    assert '"status":500' not in logs
