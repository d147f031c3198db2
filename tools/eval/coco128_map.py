#!/usr/bin/python3
"""mAP@0.5 on coco128: our service's detections vs a reference computed with OpenCV DNN's Python API.

Usage: coco128_map.py --model DIR [--binary build/clouddetect] [--conf 0.25] [--nms 0.45]
                      [--resize stretch|letterbox|both] [--backend opencv]
Prints one JSON line per resize mode: {"model","resize","conf","nms","map50_ours","map50_reference","images"}.

Both sides are scored by the same function (all-point interpolated AP per class, VOC style, averaged
over the classes present in the labels); only the detector differs.
"""
import argparse, glob, json, os, subprocess, sys

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.environ.get("CLOUDDETECT_SHARED", os.path.join(REPO, "..", "shared"))


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


def mean_ap(truth, detections, threshold=0.5):
    """detections: {image: [(class, score, x0, y0, x1, y1)]}."""
    classes = sorted({b[0] for boxes in truth.values() for b in boxes})
    aps = []
    for c in classes:
        gts = {img: [b for b in boxes if b[0] == c] for img, boxes in truth.items()}
        n_gt = sum(len(v) for v in gts.values())
        used = {img: [False] * len(v) for img, v in gts.items()}
        dets = sorted(((d[1], img, d[2:]) for img, ds in detections.items() for d in ds if d[0] == c),
                      key=lambda t: -t[0])
        tp = np.zeros(len(dets))
        for i, (_, img, box) in enumerate(dets):
            best, best_j = 0.0, -1
            for j, g in enumerate(gts.get(img, [])):
                o = iou(box, g[1:])
                if o > best:
                    best, best_j = o, j
            if best >= threshold and not used[img][best_j]:
                used[img][best_j] = True
                tp[i] = 1
        if not len(dets):
            aps.append(0.0)
            continue
        ctp = np.cumsum(tp)
        recall = ctp / n_gt
        precision = ctp / np.arange(1, len(dets) + 1)
        mrec = np.concatenate(([0.0], recall, [1.0]))
        mpre = np.concatenate(([0.0], precision, [0.0]))
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        idx = np.where(mrec[1:] != mrec[:-1])[0]
        aps.append(float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1])))
    return float(np.mean(aps)) if aps else 0.0


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
    names = [l.strip() for l in open(find_model(model_dir)[2]) if l.strip()]
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
    truth = load_labels(images)
    for resize in (["stretch", "letterbox"] if a.resize == "both" else [a.resize]):
        ours = mean_ap(truth, our_detections(a.binary, a.model, images, resize, a.conf, a.nms, a.backend))
        line = {"model": os.path.basename(os.path.normpath(a.model)), "backend": a.backend, "resize": resize,
                "conf": a.conf, "nms": a.nms, "images": len(images), "map50_ours": round(ours, 4)}
        if not a.no_reference:
            ref = mean_ap(truth, reference_detections(a.model, images, resize, a.conf, a.nms))
            line["map50_reference"] = round(ref, 4)
            line["difference"] = round(ours - ref, 4)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
