#!/usr/bin/python3
"""mAP@0.5 on a labelled folder: our service's detections vs a reference computed with OpenCV DNN's Python API.

Usage: coco128_map.py --model DIR [--images DIR/images] [--binary build/clouddetect] [--conf 0.25]
                      [--nms 0.45] [--resize stretch|letterbox|both] [--backend opencv]
Prints one JSON line per resize mode: {"model","images_dir","resize","conf","nms","map50_ours",
"map50_reference","difference","difference_ci95","images"}.

Any folder in coco128's YOLO layout works (DIR/images/x.jpg, DIR/labels/x.txt), e.g.
$CLOUDDETECT_SHARED/data/coco-val1k/images. Both sides are scored by the same function (all-point
interpolated AP per class, VOC style, averaged over the classes present in the labels); only the
detector differs. The difference carries a 95% interval from a paired bootstrap over the images.
"""
import argparse
import glob
import json
import os
import subprocess
import sys

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
from devkit import shared_dir  # noqa: E402

SHARED = shared_dir()


def load_labels(images):
    """{image path: [(class, x0, y0, x1, y1) in pixels]} from coco128's YOLO-format labels."""
    truth = {}
    for path in images:
        h, w = cv2.imread(path).shape[:2]
        label = path.replace("/images/", "/labels/").rsplit(".", 1)[0] + ".txt"
        boxes = []
        if os.path.exists(label):
            for line in open(label):
                c, cx, cy, bw, bh = line.split()
                cx, cy, bw, bh = float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
                boxes.append((int(c), cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2))
        truth[path] = boxes
    return truth


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ranked_hits(truth, detections, threshold=0.5):
    """Per class: (image index, hit) of every detection ranked by score, and the truth count per image.

    Whether a detection hits depends only on its own image (its truth and the higher-scoring
    detections of that image), so a bootstrap sample is just a weight per image."""
    images = list(truth)
    classes = sorted({b[0] for boxes in truth.values() for b in boxes})
    result = {}
    for c in classes:
        counts = np.array([sum(1 for b in truth[img] if b[0] == c) for img in images], np.int64)
        ranked = []
        for k, img in enumerate(images):
            gts = [b for b in truth[img] if b[0] == c]
            used = [False] * len(gts)
            for d in sorted((d for d in detections.get(img, []) if d[0] == c), key=lambda d: -d[1]):
                best, best_j = 0.0, -1
                for j, g in enumerate(gts):
                    o = iou(d[2:], g[1:])
                    if o > best:
                        best, best_j = o, j
                hit = best >= threshold and not used[best_j]
                if hit:
                    used[best_j] = True
                ranked.append((-d[1], k, hit))
        ranked.sort(key=lambda t: (t[0], t[1]))
        result[c] = (np.array([r[1] for r in ranked], np.int64), np.array([r[2] for r in ranked], bool), counts)
    return result


def weighted_map(hits, weight):
    """mAP with image k counted weight[k] times (all ones: the plain mAP)."""
    aps = []
    for image, hit, counts in hits.values():
        n_gt = float(np.dot(weight, counts))
        if n_gt == 0:
            continue
        w = weight[image]
        keep = w > 0
        w, hit = w[keep], hit[keep]
        if not len(w):
            aps.append(0.0)
            continue
        ctp = np.cumsum(w * hit)
        recall = ctp / n_gt
        precision = ctp / np.cumsum(w)
        mrec = np.concatenate(([0.0], recall, [1.0]))
        mpre = np.maximum.accumulate(np.concatenate(([0.0], precision, [0.0]))[::-1])[::-1]
        idx = np.where(mrec[1:] != mrec[:-1])[0]
        aps.append(float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1])))
    return float(np.mean(aps)) if aps else 0.0


def mean_ap(truth, detections, threshold=0.5):
    """detections: {image: [(class, score, x0, y0, x1, y1)]}."""
    return weighted_map(ranked_hits(truth, detections, threshold), np.ones(len(truth), np.int64))


def bootstrap_difference(truth, detections_a, detections_b, resamples=1000, seed=1):
    """The central 95% of mAP(a) - mAP(b) over images drawn with replacement (paired: both systems
    are scored on each draw)."""
    a, b = ranked_hits(truth, detections_a), ranked_hits(truth, detections_b)
    random = np.random.default_rng(seed)
    n = len(truth)
    differences = sorted(weighted_map(a, w) - weighted_map(b, w)
                         for w in (np.bincount(random.integers(0, n, n), minlength=n) for _ in range(resamples)))
    return differences[round(0.025 * (resamples - 1))], differences[round(0.975 * (resamples - 1))]


def find_model(folder):
    def one(ext):
        found = glob.glob(os.path.join(folder, "*" + ext))
        if len(found) != 1:
            sys.exit("%s: expected one %s file" % (folder, ext))
        return found[0]
    return one(".cfg"), one(".weights"), one(".names")


def letterbox_blob(img, size):
    """darknet letterbox_image: keep aspect, centre on 0.5 grey; RGB, 0..1, NCHW."""
    w, h = size
    ih, iw = img.shape[:2]
    if w / iw < h / ih:
        nw, nh = w, max(1, ih * w // iw)
    else:
        nw, nh = max(1, iw * h // ih), h
    canvas = np.full((h, w, 3), 0.5, np.float32)
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    ox, oy = (w - nw) // 2, (h - nh) // 2
    canvas[oy:oy + nh, ox:ox + nw] = resized[:, :, ::-1]
    return canvas.transpose(2, 0, 1)[None].copy(), (nw / iw, nh / ih, ox, oy)


def reference_detections(model_dir, images, resize, conf, nms):
    cfg, weights, _ = find_model(model_dir)
    net = cv2.dnn.readNetFromDarknet(cfg, weights)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    cv2.setNumThreads(1)
    size = None
    for line in open(cfg):
        k = line.split("#")[0].split("=")
        if len(k) == 2 and k[0].strip() == "width":
            size = int(k[1])
    size = (size, size)
    out_names = net.getUnconnectedOutLayersNames()
    result = {}
    for path in images:
        img = cv2.imread(path)
        ih, iw = img.shape[:2]
        if resize == "stretch":
            blob = cv2.dnn.blobFromImage(img, 1 / 255.0, size, swapRB=True, crop=False)
            sx, sy, ox, oy = size[0] / iw, size[1] / ih, 0, 0
        else:
            blob, (sx, sy, ox, oy) = letterbox_blob(img, size)
        net.setInput(blob)
        rows = np.vstack(net.forward(out_names))  # cx, cy, w, h (0..1 of the input), obj, obj*class...
        scores = rows[:, 5:]
        cls = scores.argmax(axis=1)
        score = scores[np.arange(len(cls)), cls]
        keep = score > conf
        rows, cls, score = rows[keep], cls[keep], score[keep]
        dets = []
        for c in np.unique(cls):
            sel = np.where(cls == c)[0]
            boxes = []
            for i in sel:
                cx, cy, bw, bh = rows[i, :4] * [size[0], size[1], size[0], size[1]]
                x0, y0 = (cx - bw / 2 - ox) / sx, (cy - bh / 2 - oy) / sy
                x1, y1 = (cx + bw / 2 - ox) / sx, (cy + bh / 2 - oy) / sy
                boxes.append([max(0, x0), max(0, y0), min(iw, x1), min(ih, y1)])
            xywh = [[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in boxes]
            kept = cv2.dnn.NMSBoxes(xywh, score[sel].tolist(), conf, nms)
            for k in np.array(kept).flatten():
                dets.append((int(c), float(score[sel[k]]), *boxes[k]))
        result[path] = dets
    return result


def our_detections(binary, model_dir, images, resize, conf, nms, backend):
    cmd = [binary, "detect", "--model", model_dir, "--resize", resize, "--conf", str(conf), "--nms", str(nms),
           "--backend", backend] + images
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    names = [line.strip() for line in open(find_model(model_dir)[2]) if line.strip()]
    result = {}
    for line in out.splitlines():
        reply = json.loads(line)
        dets = []
        for o in reply["objects"]:
            r = o["rectangle"]
            dets.append((names.index(o["label"]), o["accuracy"], r["left"], r["top"],
                         r["left"] + r["width"], r["top"] + r["height"]))
        result[reply["id"]] = dets
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(SHARED, "models", "yolo-fastest-1.1-xl"))
    ap.add_argument("--images", default=os.path.join(SHARED, "data", "coco128", "images"))
    ap.add_argument("--binary", default=os.path.join(REPO, "build", "clouddetect"))
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--nms", type=float, default=0.45)
    ap.add_argument("--resize", default="both", choices=["stretch", "letterbox", "both"])
    ap.add_argument("--backend", default="opencv")
    ap.add_argument("--no-reference", action="store_true", help="score only our detections")
    a = ap.parse_args()
    images = sorted(glob.glob(os.path.join(a.images, "*.jpg")))
    if not images:
        sys.exit("%s: no .jpg images (expected DIR/images with DIR/labels beside it)" % a.images)
    truth = load_labels(images)
    for resize in (["stretch", "letterbox"] if a.resize == "both" else [a.resize]):
        detections = our_detections(a.binary, a.model, images, resize, a.conf, a.nms, a.backend)
        ours = mean_ap(truth, detections)
        line = {"model": os.path.basename(os.path.normpath(a.model)), "images_dir": a.images, "backend": a.backend,
                "resize": resize, "conf": a.conf, "nms": a.nms, "images": len(images), "map50_ours": round(ours, 4)}
        if not a.no_reference:
            reference = reference_detections(a.model, images, resize, a.conf, a.nms)
            ref = mean_ap(truth, reference)
            line["map50_reference"] = round(ref, 4)
            line["difference"] = round(ours - ref, 4)
            line["difference_ci95"] = [round(v, 4) for v in bootstrap_difference(truth, detections, reference)]
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
