// The accuracy half of `clouddetect bench`: every contender's detections on a labelled set, mAP@0.5
// over the whole precision-recall curve and at the serving threshold, the raw heads' error against
// the same backend's fp32, and each difference with its paired-bootstrap 95% interval.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "detector/detector.h"
#include "eval/mean_ap.h"

namespace clouddetect {

// One system being scored: a backend at a precision.
struct ScoredSystem {
  std::string backend;
  BackendOptions options;     // its precision among them
  double map50 = -1;          // < 0: not measured
  double map50_serving = -1;  // the same detections above the serving threshold
  double head_error = -1;     // mean relative L2 error of the raw heads vs the same backend's fp32
  std::vector<eval::ImageResult> scored;
};

// A difference of mAP between two systems scored on the same images, and its 95% interval.
struct MapDifference {
  bool measured = false;
  double value = 0;
  eval::Interval ci95;
};

struct AccuracyRun {
  std::vector<std::string> images;  // scored images (never the calibration images)
  float accuracy_conf = 0.005f;     // lowest score kept: mAP integrates the whole curve
  float serving_conf = 0.5f;        // what `serve --conf` returns
  float nms = 0.45f;
  image::ResizeMode resize = image::ResizeMode::kStretch;
};

// Scores every system on run.images: each image is read once and run through every system (a
// thousand decoded images would not fit in memory at once).
void score_systems(const std::shared_ptr<const darknet::Model>& model, const AccuracyRun& run,
                   std::vector<ScoredSystem>& systems);

// a - b at conf 0.005 (serving = false) or above the serving threshold, with its interval.
MapDifference map_difference(const ScoredSystem& a, const ScoredSystem& b, const AccuracyRun& run, bool serving);

}  // namespace clouddetect
