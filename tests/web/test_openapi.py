"""The OpenAPI description served at /openapi.yaml, checked against the live server's answers.

Every response documented for a route is provoked on the real `clouddetect serve` (real model, loopback
only) and its status, headers, media type and JSON body are validated against the document; the test
fails if a documented response was never checked, so the document cannot drift from the server.
Runs with what scripts/deps.sh test installs (pytest, YAML, JSON Schema).
"""
import base64
import concurrent.futures
import http.client
import importlib.util
import json
import os
import signal
import struct
import threading
import time
import zlib

import jsonschema
import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SPEC_FILE = os.path.join(REPO, "src", "web", "openapi.yaml")
API_KEY = "test-key-123"
ORIGIN = "http://app.example"  # only ever a header value: no request leaves loopback

# (path, method, status) documented but not provoked here, and why.
NOT_PROVOKED = {
    ("/api/object_detection", "post", "500"): "needs a failing backend",
}


_spec = importlib.util.spec_from_file_location("service_conftest",
                                               os.path.join(REPO, "tests", "service", "conftest.py"))
_service = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_service)
IMAGES = _service.IMAGES


class Server(_service.Service):
    """The shared `clouddetect serve` starter (tests/service) with yolo-fastest-1.1; request()
    returns the http.client response with its body in .data, as the checker wants."""

    def __init__(self, *extra):
        super().__init__(*extra, env={"POD_NAME": "openapi-pod"}, log_prefix="clouddetect-web-openapi")

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            resp.data = resp.read()
            return resp
        finally:
            conn.close()


@pytest.fixture(scope="module")
def server():
    s = Server("--max-body-bytes", "2000000", "--max-pixels", "4000000")
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def strict_server():
    """API key, CORS, no queue (one detection in flight per worker, the rest 503 at once) and a drain
    period after SIGTERM."""
    s = Server("--api-key", API_KEY, "--cors-origins", ORIGIN, "--queue", "0", "--drain-seconds", "2")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def spec(server):
    resp = server.request("GET", "/openapi.yaml")
    assert resp.status == 200
    with open(SPEC_FILE, "rb") as f:
        assert resp.data == f.read(), "the binary serves a stale openapi.yaml"
    return yaml.safe_load(resp.data)


class Checker:
    """Validates live responses against the document and records what was checked."""

    def __init__(self, spec):
        self.spec = spec
        self.resolver = jsonschema.RefResolver.from_schema(spec)
        self.checked = set()

    def deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            _, target = self.resolver.resolve(node["$ref"])
            node = target
        return node

    def documented(self, path, method, status):
        operation = self.spec["paths"][path][method]
        responses = operation["responses"]
        key = str(status) if str(status) in responses else "default"
        assert key in responses, "%s %s: status %s is not documented" % (method.upper(), path, status)
        self.checked.add((path, method, key))
        return self.deref(responses[key])

    def component(self, name):
        return self.deref(self.spec["components"]["responses"][name])

    def validate(self, response_spec, resp, where):
        for name, header in response_spec.get("headers", {}).items():
            header = self.deref(header)
            value = resp.getheader(name)
            if value is None:
                assert not header.get("required"), "%s: missing header %s" % (where, name)
                continue
            self.validate_schema(value, header["schema"], "%s header %s" % (where, name))
        content = response_spec.get("content")
        if not content:
            assert resp.data == b"", where + ": a body where none is documented"
            return None
        media_type = resp.getheader("Content-Type")
        assert media_type in content, "%s: Content-Type %r not documented (%s)" % (
            where, media_type, sorted(content))
        schema = content[media_type]["schema"]
        if media_type.startswith("application/json"):
            body = json.loads(resp.data)
        else:
            body = resp.data.decode("utf-8")
        self.validate_schema(body, schema, where)
        return body

    def validate_schema(self, value, schema, where):
        validator = jsonschema.Draft202012Validator(schema, resolver=self.resolver,
                                                    format_checker=jsonschema.FormatChecker())
        errors = sorted(validator.iter_errors(value), key=str)
        assert not errors, "%s: %s" % (where, "; ".join(e.message for e in errors))

    def check(self, resp, path, method, status=None):
        """The response to METHOD PATH, validated against its documented response."""
        if status is not None:
            assert resp.status == status, "%s %s: %d %s" % (method.upper(), path, resp.status, resp.data[:300])
        spec = self.documented(path, method, resp.status)
        return self.validate(spec, resp, "%s %s %d" % (method.upper(), path, resp.status))


@pytest.fixture(scope="module")
def checker(spec):
    c = Checker(spec)
    yield c
    missing = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status in operation["responses"]:
                if status != "default" and (path, method, status) not in c.checked | set(NOT_PROVOKED):
                    missing.append("%s %s %s" % (method.upper(), path, status))
    assert not missing, "documented but never checked against the server: " + ", ".join(missing)


def png(width, height):
    """A valid grey PNG (small on the wire even when large in pixels)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def b64(data):
    return base64.b64encode(data).decode()


def coco(name):
    with open(os.path.join(IMAGES, name), "rb") as f:
        return f.read()


def post(server, payload, headers=None, path="/api/object_detection"):
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return server.request("POST", path, body, h)


DETECT = "/api/object_detection"


def test_document_is_openapi_3_1_with_every_route(spec):
    assert spec["openapi"].startswith("3.1.")
    assert set(spec["paths"]) == {DETECT, "/healthz", "/readyz", "/metrics", "/", "/app.js", "/app.css",
                                  "/openapi.yaml"}
    for name, schema in spec["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_every_ref_resolves(spec, checker):
    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                checker.deref(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(spec)


def test_request_examples_follow_the_request_schema(spec, checker):
    body = spec["paths"][DETECT]["post"]["requestBody"]["content"]["application/json"]
    checker.validate_schema(body["example"], body["schema"], "request example")
    checker.validate_schema({"id": "x", "image": b64(coco("000000000009.jpg")), "annotate": True},
                            body["schema"], "a real request")


@pytest.mark.parametrize("path", ["/", "/app.js", "/app.css", "/openapi.yaml"])
def test_static_files(server, checker, path):
    body = checker.check(server.request("GET", path), path, "get", 200)
    assert body


def test_probes_and_metrics(server, checker):
    assert checker.check(server.request("GET", "/healthz"), "/healthz", "get", 200) == {"status": "ok"}
    assert checker.check(server.request("GET", "/readyz"), "/readyz", "get", 200) == {"status": "ready"}
    assert "clouddetect_" in checker.check(server.request("GET", "/metrics"), "/metrics", "get", 200)


@pytest.mark.parametrize("name", ["000000000025.jpg", "000000000009.jpg", "000000000030.jpg"])
def test_detections(server, checker, name):
    resp = post(server, {"id": name, "image": b64(coco(name))})
    body = checker.check(resp, DETECT, "post", 200)
    assert body["id"] == name and body["objects"]
    assert resp.getheader("X-Served-By") == "openapi-pod"


def test_no_objects_and_query_string_ignored(server, checker):
    resp = post(server, {"id": "grey", "image": b64(png(64, 48))}, path=DETECT + "?annotate=1")
    assert checker.check(resp, DETECT, "post", 200) == {"id": "grey", "objects": []}


def test_annotated_image(server, checker):
    resp = post(server, {"id": "ann", "image": b64(coco("000000000025.jpg")), "annotate": True})
    body = checker.check(resp, DETECT, "post", 200)
    jpeg = base64.b64decode(body["annotated_image"])
    assert jpeg[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize("name,payload,echo_id", [
    ("not json", b"{nope", None),
    ("not an object", b"[1, 2]", None),
    ("missing id", {"image": "AAAA"}, None),
    ("numeric id", {"id": 7, "image": "AAAA"}, None),
    ("id too long", {"id": "x" * 257, "image": "AAAA"}, None),
    ("missing image", {"id": "m"}, "m"),
    ("image not a string", {"id": "n", "image": 5}, "n"),
    ("bad base64", {"id": "b", "image": "@@@@"}, "b"),
    ("empty image", {"id": "e", "image": ""}, "e"),
    ("annotate not a boolean", {"id": "a", "image": "AAAA", "annotate": "yes"}, "a"),
])
def test_400(server, checker, name, payload, echo_id):
    body = checker.check(post(server, payload), DETECT, "post", 400)
    assert body["id"] == echo_id, name


def test_413_body_over_the_limit(server, checker):
    body = checker.check(post(server, json.dumps({"id": "big", "image": "A" * 2_100_000})), DETECT, "post", 413)
    assert body["id"] is None


def test_413_too_many_pixels(server, checker):
    body = checker.check(post(server, {"id": "wide", "image": b64(png(2100, 2000))}), DETECT, "post", 413)
    assert body["id"] == "wide" and "pixels" in body["error"]


def test_415(server, checker):
    payload = json.dumps({"id": "t", "image": b64(coco("000000000009.jpg"))})
    checker.check(post(server, payload, {"Content-Type": "text/plain"}), DETECT, "post", 415)


def test_422(server, checker):
    body = checker.check(post(server, {"id": "txt", "image": b64(b"hello, not an image\n")}), DETECT, "post", 422)
    assert body["id"] == "txt"


def test_404_and_405(server, checker):
    resp = server.request("GET", "/nothing/here")
    assert resp.status == 404
    checker.validate(checker.component("NotFound"), resp, "GET /nothing/here")
    for method, path in [("GET", DETECT), ("POST", "/healthz"), ("DELETE", "/"), ("PUT", "/openapi.yaml")]:
        resp = server.request(method, path, b"")
        assert resp.status == 405, (method, path)
        checker.validate(checker.component("MethodNotAllowed"), resp, method + " " + path)
    # Without CORS, OPTIONS is just another method.
    resp = server.request("OPTIONS", DETECT, headers={"Origin": ORIGIN})
    checker.check(resp, DETECT, "options", 405)
    assert resp.getheader("Access-Control-Allow-Origin") is None


def test_401_without_the_api_key(strict_server, checker):
    payload = {"id": "k", "image": b64(coco("000000000009.jpg"))}
    for headers in [{}, {"Authorization": "Bearer wrong"}]:
        checker.check(post(strict_server, payload, headers), DETECT, "post", 401)


def test_503_when_the_queue_is_full(strict_server, checker):
    """--queue 0 and one worker: of requests sent together, those that find the worker busy get 503."""
    payload = {"id": "q", "image": b64(coco("000000000009.jpg"))}
    headers = {"Authorization": "Bearer " + API_KEY}
    for _ in range(5):
        start = threading.Barrier(8)

        def send():
            start.wait()
            return post(strict_server, payload, headers)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda _: send(), range(8)))
        refused = [r for r in responses if r.status == 503]
        assert all(r.status in (200, 503) for r in responses), [r.status for r in responses]
        assert any(r.status == 200 for r in responses), "the idle worker takes one"
        if refused:
            body = checker.check(refused[0], DETECT, "post", 503)
            assert "overloaded" in body["error"]
            return
    pytest.fail("8 simultaneous requests never found the only worker busy")


def test_cors(strict_server, checker):
    resp = strict_server.request("OPTIONS", DETECT, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization"})
    checker.check(resp, DETECT, "options", 204)
    assert resp.getheader("Access-Control-Allow-Origin") == ORIGIN
    assert "POST" in resp.getheader("Access-Control-Allow-Methods")
    resp = strict_server.request("GET", "/healthz", headers={"Origin": ORIGIN})
    checker.check(resp, "/healthz", "get", 200)
    assert resp.getheader("Access-Control-Allow-Origin") == ORIGIN
    resp = strict_server.request("GET", "/healthz", headers={"Origin": "http://elsewhere.example"})
    assert resp.getheader("Access-Control-Allow-Origin") is None


def test_readyz_503_while_shutting_down(strict_server, checker):
    strict_server.proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 2
    resp = strict_server.request("GET", "/readyz")
    while resp.status == 200 and time.time() < deadline:
        time.sleep(0.02)
        resp = strict_server.request("GET", "/readyz")
    body = checker.check(resp, "/readyz", "get", 503)
    assert body == {"id": None, "error": "shutting down"}
    assert strict_server.proc.wait(30) == 0
