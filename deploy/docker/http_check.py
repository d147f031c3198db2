#!/usr/bin/python3
"""Checks a running CloudDetect service from outside, as a user would (standard library only).

  http_check.py ready  --port P [--timeout S] [--alive-cmd CMD]   waits until /readyz answers 200
  http_check.py detect --port P --image JPG --label L            POSTs the image, checks the JSON

`ready` fails early when --alive-cmd (a shell command) exits non-zero: the service died.
`detect` checks the answer's id, every object's fields, that LABEL is found with accuracy >= 0.5,
and the X-Served-By header; it prints the time and the objects in one line.
"""
import argparse
import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request


def get(base, path):
    try:
        with urllib.request.urlopen(base + path, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""


def wait_ready(base, timeout, alive_cmd):
    start = time.time()
    status = None
    while time.time() - start < timeout:
        status, body = get(base, "/readyz")
        if status == 200:
            print(f"ready after {time.time() - start:.1f} s: {body.decode()}")
            return 0
        if alive_cmd and subprocess.run(alive_cmd, shell=True).returncode != 0:
            print(f"the service stopped before it was ready (after {time.time() - start:.0f} s)")
            return 1
        time.sleep(1)
    print(f"/readyz not 200 within {timeout:.0f} s (last status {status})")
    return 1


def object_problems(objects, label):
    if not isinstance(objects, list):
        return ["no objects list"]
    problems = []
    for o in objects:
        r = o.get("rectangle", {})
        if not (isinstance(o.get("label"), str) and 0 <= o.get("accuracy", -1) <= 1 and
                all(isinstance(r.get(k), int) for k in ("left", "top", "width", "height"))):
            problems.append(f"malformed object {o}")
    if not any(o.get("label") == label and o.get("accuracy", 0) >= 0.5 for o in objects):
        problems.append(f"no {label!r} found")
    return problems


def detect(base, image, label, request_id):
    with open(image, "rb") as f:
        payload = json.dumps({"id": request_id, "image": base64.b64encode(f.read()).decode()}).encode()
    req = urllib.request.Request(base + "/api/object_detection", data=payload, method="POST",
                                 headers={"Content-Type": "application/json"})
    t0 = time.time()
    with urllib.request.urlopen(req, timeout=60) as r:
        status, served_by, answer = r.status, r.headers.get("X-Served-By"), json.load(r)
    ms = (time.time() - t0) * 1000
    problems = [] if status == 200 else [f"status {status}"]
    if answer.get("id") != request_id:
        problems.append(f"id {answer.get('id')!r}")
    objects = answer.get("objects")
    problems += object_problems(objects, label)
    if not served_by:
        problems.append("no X-Served-By header")
    summary = ", ".join(f"{o.get('label')} {o.get('accuracy'):.2f}" for o in objects or [])
    print(f"{ms:.0f} ms, X-Served-By {served_by}: {summary}")
    if problems:
        print("problems: " + "; ".join(problems))
        return 1
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phase", choices=["ready", "detect"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", required=True)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--alive-cmd", default="")
    p.add_argument("--image")
    p.add_argument("--label")
    p.add_argument("--id", default="docker-test-1")
    a = p.parse_args()
    base = f"http://{a.host}:{a.port}"
    if a.phase == "ready":
        return wait_ready(base, a.timeout, a.alive_cmd)
    if not (a.image and a.label):
        p.error("detect needs --image and --label")
    return detect(base, a.image, a.label, a.id)


if __name__ == "__main__":
    sys.exit(main())
