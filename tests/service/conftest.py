"""Starts the real `clouddetect serve` on an ephemeral loopback port with a real model."""
import base64, http.client, json, os, re, signal, subprocess, time, uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("CLOUDDETECT_SHARED", os.path.join(REPO, "..", "shared"))
BINARY = os.environ.get("CLOUDDETECT_BIN", os.path.join(REPO, "build", "clouddetect"))
IMAGES = os.path.join(SHARED, "data", "coco128", "images")


class Service:
    def __init__(self, *extra, model="yolo-fastest-1.1"):
        self.log_path = "/tmp/clouddetect-test-%s.log" % uuid.uuid4().hex[:8]
        self.log = open(self.log_path, "w+")
        cmd = [BINARY, "serve", "--model", os.path.join(SHARED, "models", model), "--host", "127.0.0.1",
               "--port", "0", "--workers", "1", *extra]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline and self.port is None:
            assert self.proc.poll() is None, "server exited: " + open(self.log_path).read()
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(self.log_path).read())
            if m:
                self.port = int(m.group(1))
            time.sleep(0.05)
        while time.time() < deadline:
            if self.get("/readyz")[0] == 200:
                return
            time.sleep(0.05)
        raise AssertionError("not ready: " + open(self.log_path).read())

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
