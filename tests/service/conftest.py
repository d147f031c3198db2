"""Starts the real `clouddetect serve` on an ephemeral loopback port with a real model."""
import base64
import json
import os
import resource
import sys
import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tools"))
import devkit  # noqa: E402

REPO = devkit.REPO_ROOT
SHARED = devkit.shared_dir()
BINARY = devkit.clouddetect_binary()
IMAGES = os.path.join(SHARED, "data", "coco128", "images")


class Service(devkit.ClouddetectService):
    """`clouddetect serve` on an ephemeral loopback port (tools/devkit.py starts it and waits for
    /readyz); the one server starter of every pytest folder (tests/reliability and tests/web build on
    it). `prefix` runs it under a wrapper (e.g. pod.sh NAME --), `nofile` sets the child's fd limit,
    `env` adds variables."""

    def __init__(self, *extra, model="yolo-fastest-1.1", prefix=(), nofile=None, ready_timeout=60, env=None,
                 log_prefix="clouddetect-test"):
        log_path = "/tmp/%s-%s.log" % (log_prefix, uuid.uuid4().hex[:8])
        if "--workers" not in extra:
            extra = ("--workers", "1", *extra)

        def limit():
            if nofile is not None:
                hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))

        try:
            super().__init__(*extra, model=os.path.join(SHARED, "models", model), binary=BINARY, prefix=prefix,
                             env=env, log_path=log_path, ready_timeout=ready_timeout, preexec_fn=limit)
        except RuntimeError as e:  # not ready: a test failure with the service's log
            raise AssertionError(str(e)) from None

    def detect(self, payload, headers=None):
        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        status, data, hdrs = self.request("POST", "/api/object_detection", body, h)
        return status, json.loads(data) if data else None, hdrs


def image_payload(name="000000000009.jpg", id=None):
    with open(os.path.join(IMAGES, name), "rb") as f:
        return {"id": id or str(uuid.uuid4()), "image": base64.b64encode(f.read()).decode()}


@pytest.fixture(scope="module")
def service():
    s = Service("--max-body-bytes", "2000000", "--max-pixels", "4000000")
    yield s
    assert s.stop() == 0
