"""Detections are right on real images: mAP@0.5 of our service on coco128 equals OpenCV DNN's Python API."""
import glob, os, sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools", "eval"))
import coco128_map as m  # noqa: E402

BINARY = os.environ.get("CLOUDDETECT_BIN", os.path.join(REPO, "build", "clouddetect"))
MODEL = os.path.join(m.SHARED, "models", "yolo-fastest-1.1-xl")
IMAGES = sorted(glob.glob(os.path.join(m.SHARED, "data", "coco128", "images", "*.jpg")))


@pytest.fixture(scope="module")
def truth():
    assert len(IMAGES) == 128
    return m.load_labels(IMAGES)


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_map_matches_opencv_python_reference(truth, resize):
    conf, nms = 0.25, 0.45
    ours = m.mean_ap(truth, m.our_detections(BINARY, MODEL, IMAGES, resize, conf, nms, "opencv"))
    ref = m.mean_ap(truth, m.reference_detections(MODEL, IMAGES, resize, conf, nms))
    print("%s: ours %.4f reference %.4f" % (resize, ours, ref))
    assert ref > 0.25, "the reference itself must detect (published COCO mAP@0.5 of this model: 0.343)"
    assert abs(ours - ref) <= 0.005


def test_default_resize_is_the_better_one_for_this_model(truth):
    scores = {r: m.mean_ap(truth, m.our_detections(BINARY, MODEL, IMAGES, r, 0.25, 0.45, "opencv"))
              for r in ("stretch", "letterbox")}
    default = m.our_detections(BINARY, MODEL, IMAGES, "auto", 0.25, 0.45, "opencv")
    assert m.mean_ap(truth, default) == pytest.approx(max(scores.values()))


def test_map_scoring_is_exact_on_ground_truth(truth):
    perfect = {img: [(b[0], 1.0, *b[1:]) for b in boxes] for img, boxes in truth.items()}
    assert m.mean_ap(truth, perfect) == pytest.approx(1.0)
    shifted = {img: [(b[0], 1.0, b[1] + 10000, b[2], b[3] + 10000, b[4]) for b in boxes] for img, boxes in truth.items()}
    assert m.mean_ap(truth, shifted) == 0.0


def test_native_backend_has_the_same_map_as_opencv(truth):
    opencv = m.mean_ap(truth, m.our_detections(BINARY, MODEL, IMAGES, "stretch", 0.25, 0.45, "opencv"))
    native = m.mean_ap(truth, m.our_detections(BINARY, MODEL, IMAGES, "stretch", 0.25, 0.45, "native"))
    print("opencv %.4f native %.4f" % (opencv, native))
    assert abs(native - opencv) <= 0.002
