"""Starts the real `clouddetect serve` on an ephemeral loopback port with a real model."""
import base64, http.client, json, os, re, resource, signal, subprocess, time, uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("CLOUDDETECT_SHARED", os.path.join(REPO, "..", "shared"))
BINARY = os.environ.get("CLOUDDETECT_BIN", os.path.join(REPO, "build", "clouddetect"))
IMAGES = os.path.join(SHARED, "data", "coco128", "images")


class Service:
    """`clouddetect serve` on an ephemeral loopback port; the one server starter of every pytest folder
    (tests/reliability and tests/web build on it). `prefix` runs it under a wrapper (e.g. pod.sh NAME
    --), `nofile` sets the child's fd limit, `env` adds variables."""

    def __init__(self, *extra, model="yolo-fastest-1.1", prefix=(), nofile=None, ready_timeout=60, env=None,
                 log_prefix="clouddetect-test"):
        self.log_path = "/tmp/%s-%s.log" % (log_prefix, uuid.uuid4().hex[:8])
        self.log = open(self.log_path, "w+")
        cmd = [*prefix, BINARY, "serve", "--model", os.path.join(SHARED, "models", model), "--host", "127.0.0.1",
               "--port", "0", *extra]
        if "--workers" not in extra:
            cmd[len(prefix) + 2:len(prefix) + 2] = ["--workers", "1"]

        def limit():
            if nofile is not None:
                hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=limit,
                                     env={**os.environ, **(env or {})})
        self.port = None
        deadline = time.time() + ready_timeout
        while time.time() < deadline and self.port is None:
            assert self.proc.poll() is None, "server exited: " + self.logs()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.logs())
            if m:
                self.port = int(m.group(1))
            time.sleep(0.05)
        while time.time() < deadline:
            if self._status("/readyz") == 200:
                return
            time.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        raise AssertionError("not ready: " + self.logs())

    def _status(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            return conn.getresponse().status
        except OSError:
            return None
        finally:
            conn.close()

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, data, dict(resp.getheaders())
        finally:
            conn.close()

    def get(self, path):
        return self.request("GET", path)

    def detect(self, payload, headers=None):
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        status, data, hdrs = self.request("POST", "/api/object_detection", body, h)
        return status, json.loads(data) if data else None, hdrs

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def logs(self):
        return open(self.log_path).read()


def image_payload(name="000000000009.jpg", id=None):
    with open(os.path.join(IMAGES, name), "rb") as f:
        return {"id": id or str(uuid.uuid4()), "image": base64.b64encode(f.read()).decode()}


@pytest.fixture(scope="module")
def service():
    s = Service("--max-body-bytes", "2000000", "--max-pixels", "4000000")
    yield s
    assert s.stop() == 0
