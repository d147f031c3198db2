"""Security: the optional API key (flag and environment variable), probes stay open, no route
serves files from disk, HEAD and TRACE are handled sanely."""
import json
import os

import pytest

from conftest import (Server, assert_still_serving, http_request, image_payload, parse_responses,
                      raw_exchange)

KEY = "s3cr3t-key-0123456789"


@pytest.fixture(scope="module")
def keyed():
    os.environ["CLOUDDETECT_API_KEY"] = KEY  # the variable, not the flag: how a Secret is mounted
    try:
        s = Server()
    finally:
        del os.environ["CLOUDDETECT_API_KEY"]
    yield s
    assert s.stop() == 0


@pytest.mark.parametrize("auth,status", [
    (None, 401),
    ("", 401),
    ("Bearer", 401),
    ("Bearer ", 401),
    ("Bearer wrong", 401),
    ("Bearer " + KEY[:-1], 401),
    ("Bearer " + KEY + "x", 401),
    ("Basic " + KEY, 401),
    (KEY, 401),
    ("Bearer " + KEY, 200),
    ("bearer " + KEY, 200),
    ("Bearer  " + KEY + " ", 200),
])
def test_api_key(keyed, auth, status):
    headers = {} if auth is None else {"Authorization": auth}
    got, body, hdrs = keyed.detect(image_payload(id="k"), headers=headers)
    assert got == status, body
    if status == 401:
        assert body["error"] and hdrs.get("WWW-Authenticate") == "Bearer"
    else:
        assert body["id"] == "k"


def test_probes_and_metrics_stay_open_with_a_key(keyed):
    assert keyed.get("/healthz")[0] == 200
    assert keyed.get("/readyz")[0] == 200
    status, data, _ = keyed.get("/metrics")
    assert status == 200 and b'reason="unauthorized"' in data


def test_unauthorized_is_answered_before_reading_the_body(keyed):
    """A 401 does not make the server read (or hold) a large body; the connection is closed."""
    req = http_request("POST", "/api/object_detection", b"", {"Content-Length": "15000000"})
    raw = raw_exchange(keyed.port, req, timeout=5)
    r = parse_responses(raw)
    assert r[0][0] == 401


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    assert s.stop() == 0


TRAVERSAL = [
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "/healthz/../../etc/passwd",
    "/api/../../etc/passwd",
    "//etc/passwd",
    "/etc/passwd",
    "/proc/self/environ",
    "/./healthz/./../metrics",
    "/%00/etc/passwd",
    "/..\\..\\etc\\passwd",
    "../../etc/passwd",
    "/" + "../" * 200 + "etc/passwd",
]


@pytest.mark.parametrize("target", TRAVERSAL)
def test_no_path_traversal(server, target):
    raw = raw_exchange(server.port, http_request("GET", target), timeout=5, expect=1)
    r = parse_responses(raw)
    assert r and r[0][0] in (400, 404), raw[:300]
    assert b"root:" not in raw and b"PATH=" not in raw
    assert json.loads(r[0][2])["error"]


def test_head_is_get_without_a_body(server):
    # Two pipelined HEADs then a GET on one connection: if a HEAD answer carried a body, the
    # next answer would be misread.
    reqs = (http_request("HEAD", "/healthz") + http_request("HEAD", "/nothing") +
            http_request("HEAD", "/api/object_detection")
            + http_request("GET", "/healthz", headers={"Connection": "close"}))
    raw = raw_exchange(server.port, reqs, timeout=5)
    # Parse by hand: HEAD answers have Content-Length but no body.
    parts = raw.split(b"HTTP/1.1 ")
    statuses = [int(p[:3]) for p in parts[1:]]
    assert statuses == [200, 404, 405, 200], raw[:1000]
    head_ok = b"HTTP/1.1 " + parts[1]
    assert head_ok.endswith(b"\r\n\r\n"), "HEAD answer must have no body"
    assert b"Content-Length: 15" in head_ok  # that of GET /healthz's {"status":"ok"}
    assert raw.endswith(b'{"status":"ok"}')
    allow = [line for line in parts[3].split(b"\r\n") if line.lower().startswith(b"allow:")]
    assert allow == [b"Allow: POST"]


def test_trace_and_connect_are_refused(server):
    for req in (http_request("TRACE", "/healthz", headers={"X-Secret-Echo": "should-not-echo"}),
                http_request("TRACE", "/"), b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n"):
        raw = raw_exchange(server.port, req, timeout=5, expect=1)
        r = parse_responses(raw)
        assert r and r[0][0] in (400, 404, 405), raw[:300]
        assert b"should-not-echo" not in raw
    assert_still_serving(server)


def test_error_bodies_do_not_reflect_markup_unescaped(server):
    raw = raw_exchange(server.port, http_request("GET", "/<script>alert(1)</script>"), timeout=5, expect=1)
    r = parse_responses(raw)
    assert r[0][0] == 404 and r[0][1]["content-type"].startswith("application/json")
    assert r[0][1].get("x-content-type-options", "nosniff") == "nosniff"
