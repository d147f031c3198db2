"""The live service on real images: the API's shape, every error status, and that it keeps serving."""
import base64
import concurrent.futures
import json
import os
import struct
import subprocess
import zlib

import cv2
import pytest

from conftest import BINARY, IMAGES, SHARED, Service, image_payload


def labels_of(name):
    names = [n.strip() for n in open(os.path.join(SHARED, "models", "yolo-fastest-1.1", "coco.names")) if n.strip()]
    path = os.path.join(SHARED, "data", "coco128", "labels", name.replace(".jpg", ".txt"))
    return {names[int(line.split()[0])] for line in open(path)}


def assert_still_serving(service):
    status, body, _ = service.detect(image_payload("000000000025.jpg", id="after"))
    assert status == 200 and body["id"] == "after"


def test_detects_real_objects_in_the_assignment_shape(service):
    payload = image_payload("000000000025.jpg", id="giraffe-1")
    status, body, headers = service.detect(payload)
    assert status == 200
    assert set(body) == {"id", "objects"}
    assert body["id"] == "giraffe-1"
    assert headers.get("X-Served-By")
    img = cv2.imread(os.path.join(IMAGES, "000000000025.jpg"))
    h, w = img.shape[:2]
    assert body["objects"], "a giraffe photo must yield detections"
    for o in body["objects"]:
        assert set(o) == {"label", "accuracy", "rectangle"}
        assert set(o["rectangle"]) == {"height", "left", "top", "width"}
        r = o["rectangle"]
        assert all(isinstance(v, int) for v in r.values())
        assert 0 <= r["left"] and r["left"] + r["width"] <= w and 0 <= r["top"] and r["top"] + r["height"] <= h
        assert 0.5 < o["accuracy"] <= 1.0
    assert "giraffe" in {o["label"] for o in body["objects"]}


def test_labels_found_are_in_the_ground_truth(service):
    hits = 0
    for name in ["000000000009.jpg", "000000000025.jpg", "000000000030.jpg", "000000000034.jpg", "000000000036.jpg"]:
        status, body, _ = service.detect(image_payload(name))
        assert status == 200
        found = {o["label"] for o in body["objects"]}
        hits += len(found & labels_of(name))
    assert hits >= 4


def test_png_and_data_url_and_line_breaks(service):
    img = cv2.imread(os.path.join(IMAGES, "000000000025.jpg"))
    ok, png = cv2.imencode(".png", img)
    b64 = base64.encodebytes(png.tobytes()).decode()  # with line breaks every 76 chars
    status, body, _ = service.detect({"id": "png", "image": "data:image/png;base64," + b64})
    assert status == 200 and "giraffe" in {o["label"] for o in body["objects"]}


def test_grayscale_image_is_accepted(service):
    img = cv2.imread(os.path.join(IMAGES, "000000000025.jpg"), cv2.IMREAD_GRAYSCALE)
    ok, jpg = cv2.imencode(".jpg", img)
    status, body, _ = service.detect({"id": "gray", "image": base64.b64encode(jpg.tobytes()).decode()})
    assert status == 200 and isinstance(body["objects"], list)


ERROR_CASES = [
    ("not json", b"{not json", 400, None),
    ("array", json.dumps([1, 2]), 400, None),
    ("missing image", json.dumps({"id": "m1"}), 400, "m1"),
    ("missing id", json.dumps({"image": "aGVsbG8="}), 400, None),
    ("numeric id", json.dumps({"id": 5, "image": "aGVsbG8="}), 400, None),
    ("image not a string", json.dumps({"id": "t1", "image": 12}), 400, "t1"),
    ("bad base64", json.dumps({"id": "b1", "image": "@@@@"}), 400, "b1"),
    ("empty image", json.dumps({"id": "e1", "image": ""}), 400, "e1"),
    ("text not image", json.dumps({"id": "x1", "image": base64.b64encode(b"hello world, not a picture").decode()}),
     422, "x1"),
]


@pytest.mark.parametrize("name,body,status,echo_id", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_requests_get_clear_json_errors(service, name, body, status, echo_id):
    got, data, headers = service.detect(body)
    assert got == status, data
    assert headers["Content-Type"].startswith("application/json")
    assert isinstance(data["error"], str) and data["error"]
    assert data.get("id") == echo_id
    assert_still_serving(service)


def test_truncated_jpeg_is_unprocessable(service):
    with open(os.path.join(IMAGES, "000000000009.jpg"), "rb") as f:
        data = f.read()[:300]
    status, body, _ = service.detect({"id": "trunc", "image": base64.b64encode(data).decode()})
    assert status == 422 and body["id"] == "trunc"
    assert_still_serving(service)


def test_too_many_pixels_is_refused_from_the_header(service):
    # A valid PNG whose header declares 30000 x 30000 pixels (a decompression bomb's shape).
    raw = zlib.compress(b"\x00" * 31)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    status, body, _ = service.detect({"id": "bomb", "image": base64.b64encode(png).decode()})
    assert status == 413 and "pixels" in body["error"]
    assert_still_serving(service)


def test_body_over_the_limit_is_413(service):
    status, body, _ = service.detect(json.dumps({"id": "big", "image": "A" * 2_100_000}))
    assert status == 413 and body["error"]
    assert_still_serving(service)


def test_wrong_content_type_is_415(service):
    status, body, _ = service.detect(json.dumps(image_payload()), headers={"Content-Type": "text/plain"})
    assert status == 415 and body["error"]


def test_wrong_route_and_method(service):
    status, data, _ = service.get("/api/nothing")
    assert status == 404 and json.loads(data)["error"]
    status, data, headers = service.get("/api/object_detection")
    assert status == 405 and json.loads(data)["error"] and "POST" in headers.get("Allow", "")


def test_probes_and_metrics(service):
    assert service.get("/healthz")[0] == 200
    assert service.get("/readyz")[0] == 200
    status, data, _ = service.get("/metrics")
    text = data.decode()
    assert status == 200
    assert 'clouddetect_http_requests_total{route="/api/object_detection",status="200"}' in text
    assert "clouddetect_inference_duration_seconds_bucket" in text
    assert "clouddetect_queue_depth" in text


def test_request_log_names_id_status_and_host(service):
    service.detect(image_payload(id="logged-id"))
    import time
    for _ in range(50):  # the line is written just after the response is sent
        lines = [json.loads(line) for line in service.logs().splitlines() if '"logged-id"' in line]
        if lines:
            break
        time.sleep(0.05)
    assert lines and lines[-1]["status"] == 200 and lines[-1]["host"] and lines[-1]["objects"] >= 0


def test_concurrent_requests_all_answered_with_their_own_id(service):
    names = sorted(os.listdir(IMAGES))[:16]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: (n, service.detect(image_payload(n, id=n))), names))
    for name, (status, body, _) in results:
        assert status == 200 and body["id"] == name


def test_sigterm_finishes_in_flight_requests_and_exits_zero():
    s = Service()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(s.detect, image_payload(id="inflight-%d" % i)) for i in range(4)]
        import time
        time.sleep(0.05)
        code = s.stop()
        answers = [f.result() for f in futures]
    assert code == 0
    # Every request the server accepted was answered in full; none was cut off.
    for status, body, _ in answers:
        assert status in (200, 503)
        if status == 200:
            assert body["id"].startswith("inflight-")
    assert any(status == 200 for status, _, _ in answers)


def test_readyz_is_503_while_the_model_loads_and_bad_model_exits_nonzero(tmp_path):
    (tmp_path / "m.cfg").write_text("[net]\nwidth=32\nheight=32\n[lstm]\n")
    (tmp_path / "m.weights").write_bytes(b"\0" * 20)
    (tmp_path / "m.names").write_text("a\n")
    r = subprocess.run([BINARY, "serve", "--model", str(tmp_path), "--port", "0", "--host", "127.0.0.1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "m.cfg:4: [lstm] unsupported layer type" in r.stdout + r.stderr


def test_api_key_from_a_mounted_file_protects_detection_and_metrics_not_probes(tmp_path):
    key = tmp_path / "api-key"
    key.write_text("s3cret-from-secret\n")
    s = Service("--api-key-file", str(key), "--protect-metrics")
    try:
        assert s.detect(image_payload(id="k0"))[0] == 401
        assert s.detect(image_payload(id="k1"), headers={"Authorization": "Bearer wrong"})[0] == 401
        status, body, _ = s.detect(image_payload(id="k2"), headers={"Authorization": "Bearer s3cret-from-secret"})
        assert status == 200 and body["id"] == "k2"
        assert s.get("/metrics")[0] == 401
        assert s.request("GET", "/metrics", headers={"Authorization": "Bearer s3cret-from-secret"})[0] == 200
        assert s.get("/healthz")[0] == 200 and s.get("/readyz")[0] == 200
    finally:
        assert s.stop() == 0


def test_int8_from_an_old_calibration_file_serves_and_says_to_calibrate_again(tmp_path):
    """A calibration file from before the channel means (bias correction) still serves int8, and the
    log names the file and the command that brings int8's best accuracy."""
    ranges = tmp_path / "old-ranges.json"
    subprocess.run([BINARY, "calibrate", "--model", os.path.join(SHARED, "models", "yolo-fastest-1.1"), "--limit", "4",
                    "--out", str(ranges)], check=True, capture_output=True,
                   env={**os.environ, "CLOUDDETECT_SHARED": SHARED})
    data = json.loads(ranges.read_text())
    assert "channel_mean" in data
    del data["channel_mean"]
    ranges.write_text(json.dumps(data))
    s = Service("--precision", "int8", "--calibration", str(ranges))
    try:
        status, body, _ = s.detect(image_payload())
        assert status == 200 and body["objects"]
        advice = [line for line in s.logs().splitlines() if "no channel means" in line]
        assert advice and str(ranges) in advice[0] and "clouddetect calibrate" in advice[0]
    finally:
        assert s.stop() == 0
