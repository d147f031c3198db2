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

}  // namespace clouddetect::eval
