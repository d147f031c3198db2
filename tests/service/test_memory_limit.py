"""`serve` refuses at start a model that leaves requests too little of the memory limit (a clear
message and exit 1 instead of an OOM kill under load), and serves one that fits."""
import os
import re
import subprocess

from conftest import BINARY, SHARED, Service, image_payload


def test_refuses_a_model_over_the_memory_limit():
    model = os.path.join(SHARED, "models", "yolo-fastest-1.1")
    run = subprocess.run([BINARY, "serve", "--model", model, "--port", "0", "--workers", "1",
                          "--memory-limit", "64MiB"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1, run.stderr
    assert re.search(r"model yolo-fastest-1\.1 needs about \d+ MiB \(.*\) plus 32 MiB for requests, "
                     r"but the memory limit is 64 MiB \(--memory-limit", run.stderr), run.stderr
    assert '"message":"ready"' not in run.stdout


def test_serves_a_model_within_the_memory_limit():
    s = Service("--memory-limit", "512MiB")
    try:
        status, body, _ = s.detect(image_payload())
        assert status == 200, body
    finally:
        assert s.stop() == 0
