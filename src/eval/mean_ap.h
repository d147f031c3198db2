// mAP@IoU as tools/eval/coco128_map.py computes it (VOC style): per class present in the ground
// truth, detections of all images ranked by score, each matched to the best-overlapping truth box
// of its image (a box already matched makes it a false positive), all-point interpolated AP;
// the mean over those classes.
#pragma once

#include <vector>

#include "core/types.h"
#include "eval/dataset.h"

namespace clouddetect::eval {

struct ImageResult {
  std::vector<GroundTruth> truth;
  std::vector<Detection> detections;
};

double mean_average_precision(const std::vector<ImageResult>& images, float iou_threshold = 0.5f);

// The same images with only the detections scoring above `score_threshold`: what a detector run at
// that threshold returns (decoding keeps score > threshold and NMS is per class, so a box above the
// threshold is suppressed by the same higher-scoring boxes either way).
std::vector<ImageResult> above_threshold(const std::vector<ImageResult>& images, float score_threshold);

// How far mAP(a) - mAP(b) can be trusted on this many images: a paired bootstrap (the images are
// drawn with replacement `resamples` times and both systems scored on each draw; `a[i]` and `b[i]`
// are the same image). Returns the central 95% of the differences. On the 128 coco128 images an
// int8-sized change moves mAP@0.5 by about +-0.01, so a single difference says little without it.
struct Interval {
  double low = 0;
  double high = 0;
};
Interval bootstrap_map_difference(const std::vector<ImageResult>& a, const std::vector<ImageResult>& b,
                                  float iou_threshold = 0.5f, int resamples = 1000, unsigned seed = 1);

}  // namespace clouddetect::eval
