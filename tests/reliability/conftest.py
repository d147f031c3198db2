"""Shared helpers for the reliability suite: the live server (reusing tests/service's `Service`),
raw sockets, metrics, and "does it still answer a good request".

Env: CLOUDDETECT_BIN, CLOUDDETECT_SHARED (as tests/service), RELIABILITY_OUT (results folder,
default /tmp/clouddetect-reliability), RELIABILITY_SOAK_SECONDS (default 60).
Only 127.0.0.1 is ever contacted.
"""
import importlib.util
import json
import os
import re
import resource
import socket
import time


HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "service_conftest", os.path.join(os.path.dirname(HERE), "service", "conftest.py"))
_service = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_service)

Service = _service.Service
BINARY = _service.BINARY
SHARED = _service.SHARED
IMAGES = _service.IMAGES
image_payload = _service.image_payload
MODEL = os.path.join(SHARED, "models", "yolo-fastest-1.1")
OUT = os.environ.get("RELIABILITY_OUT", "/tmp/clouddetect-reliability")
HOST = "127.0.0.1"


def raise_nofile(want):
    """Raises this process's soft RLIMIT_NOFILE to `want` (capped by the hard limit); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Server(Service):
    """`Service` with kill() and /metrics helpers; logs under clouddetect-rel-*."""

    def __init__(self, *extra, ready_timeout=90, **options):
        super().__init__(*extra, ready_timeout=ready_timeout, log_prefix="clouddetect-rel", **options)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def metrics(self):
        status, data, _ = self.get("/metrics")
        assert status == 200
        return data.decode()

    def metric(self, name, labels=""):
        """The value of one sample, e.g. metric('clouddetect_rejected_total', 'reason="client_gone"')."""
        pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else r"(\{\})?") + r" ([0-9.e+-]+)"
        m = re.search("^" + pattern + "$", self.metrics(), re.M)
        return float(m.group(2 if not labels else 1)) if m else 0.0

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def good_body(name="000000000025.jpg", id=None):
    return json.dumps(image_payload(name, id=id)).encode()


def assert_still_serving(server, id="still-serving"):
    """A good detection request on a fresh connection gets its 200 with its id."""
    status, body, _ = server.detect(image_payload("000000000025.jpg", id=id))
    assert status == 200 and body["id"] == id, (status, body)


def raw_exchange(port, data, timeout=5.0, shutdown_write=False, expect=None):
    """Sends raw bytes on a new connection; returns everything received until the server closes
    the connection, `expect` complete responses have arrived, or `timeout` passes without a byte."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        if data:
            s.sendall(data)
        if shutdown_write:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                chunks.append(b"<RST>")
                break
            if not chunk:
                break
            chunks.append(chunk)
            if expect is not None and len(parse_responses(b"".join(chunks))) >= expect:
                break
        return b"".join(chunks)
    finally:
        s.close()


def parse_responses(data):
    """Splits raw bytes into HTTP responses: [(status, headers{lower: value}, body)]."""
    out = []
    rest = data
    while rest.startswith(b"HTTP/"):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if status == 100:
            continue
        n = int(headers.get("content-length", "0"))
        body, rest = rest[:n], rest[n:]
        out.append((status, headers, body))
    return out


def http_request(method, target, body=b"", headers=None, version="HTTP/1.1"):
    h = {"Host": "127.0.0.1"}
    if body or method == "POST":
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    head = "%s %s %s\r\n" % (method, target, version) + "".join(
        "%s: %s\r\n" % kv for kv in h.items() if kv[1] is not None)
    return head.encode("latin-1") + b"\r\n" + body


def percentile(values, p):
    v = sorted(values)
    if not v:
        return None
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def write_result(name, record):
    """Appends one JSON line to $RELIABILITY_OUT/results.jsonl (numbers for RELIABILITY.md)."""
    os.makedirs(OUT, exist_ok=True)
    record = dict(record, test=name, ts=time.strftime("%Y-%m-%dT%H:%M:%S"))
    with open(os.path.join(OUT, "results.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")
    print("\n[reliability] %s: %s" % (name, json.dumps(record)))
