"""coco-val1k (1000 real COCO val2017 images): the native backend's fp32 detections score the same
mAP@0.5 as OpenCV DNN's, on both real models, to within 0.005, with the paired-bootstrap interval of
the difference printed beside it. `clouddetect bench` scores both on the same images in one process."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
from devkit import clouddetect_binary, shared_dir  # noqa: E402

SHARED = shared_dir()
BINARY = clouddetect_binary()
DATASET = os.path.join(SHARED, "data", "coco-val1k")

pytestmark = pytest.mark.slow


def bench(model, *args):
    """`clouddetect bench --accuracy` on coco-val1k: one dict per backend/precision."""
    out = subprocess.run([BINARY, "bench", "--model", os.path.join(SHARED, "models", model), "--iterations", "3",
                          "--warmup", "1", "--dataset", DATASET, "--accuracy", *args],
                         check=True, capture_output=True, text=True, env={**os.environ, "CLOUDDETECT_SHARED": SHARED})
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("model", ["yolo-fastest-1.1", "yolo-fastest-1.1-xl"])
def test_native_fp32_scores_as_opencv_on_1000_images(model):
    assert len(os.listdir(os.path.join(DATASET, "images"))) == 1000
    opencv, native = bench(model, "--backend", "opencv,native", "--precision", "fp32")
    assert (opencv["backend"], native["backend"]) == ("opencv", "native")
    assert native["scored_images"] == 1000 and native["dataset"] == DATASET
    low, high = native["map50_vs_opencv_ci95"]
    print("%s: native %.4f opencv %.4f difference %+.4f [%+.4f, %+.4f]; at conf %.2f: %+.4f" % (
        model, native["map50"], opencv["map50"], native["map50_vs_opencv"], low, high, native["serving_conf"],
        native["map50_serving_vs_opencv"]))
    assert opencv["map50"] > 0.15, "the reference itself must detect (measured: 0.181 and 0.263)"
    assert native["map50_vs_opencv"] == pytest.approx(native["map50"] - opencv["map50"], abs=2e-4)
    assert abs(native["map50_vs_opencv"]) <= 0.005
    assert abs(native["map50_serving_vs_opencv"]) <= 0.005
    assert low <= native["map50_vs_opencv"] <= high
