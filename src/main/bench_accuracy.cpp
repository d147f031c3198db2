#include "main/bench_accuracy.h"

#include <cmath>

#include "eval/dataset.h"
#include "eval/head_error.h"
#include "main/detection_service.h"

namespace clouddetect {

void score_systems(const std::shared_ptr<const darknet::Model>& model, const AccuracyRun& run,
                   std::vector<ScoredSystem>& systems) {
  DetectorOptions detector_options;
  detector_options.score_threshold = run.accuracy_conf;
  detector_options.nms_threshold = run.nms;
  detector_options.resize = run.resize;
  std::vector<std::unique_ptr<Detector>> detectors;
  // The same backend's fp32 system, which a lower precision's head error is measured against.
  std::vector<int> reference(systems.size(), -1);
  for (std::size_t s = 0; s < systems.size(); ++s) {
    detectors.push_back(std::make_unique<Detector>(model, create_backend(systems[s].backend, model, systems[s].options),
                                                   detector_options));
    systems[s].scored.assign(run.images.size(), {});
    for (std::size_t r = 0; r < systems.size(); ++r) {
      if (r != s && systems[r].backend == systems[s].backend && systems[r].options.precision == Precision::kFp32) {
        reference[s] = static_cast<int>(r);
      }
    }
    if (reference[s] >= 0) systems[s].head_error = 0;
  }
  for (std::size_t i = 0; i < run.images.size(); ++i) {
    const cv::Mat bgr = read_image_file(run.images[i]);
    const auto truth = eval::load_yolo_labels(run.images[i], bgr.cols, bgr.rows);
    for (std::size_t s = 0; s < systems.size(); ++s) {
      systems[s].scored[i] = {truth, detectors[s]->detect(bgr)};
    }
    // Heads against fp32 on the same input (every detector preprocesses alike): a much finer signal
    // than mAP, which a small change moves by the interval's width.
    for (std::size_t s = 0; s < systems.size(); ++s) {
      if (reference[s] < 0) continue;
      systems[s].head_error += eval::relative_head_error(
          detectors[s]->last_heads(), detectors[static_cast<std::size_t>(reference[s])]->last_heads());
    }
  }
  for (ScoredSystem& system : systems) {
    if (system.head_error > 0) system.head_error /= static_cast<double>(run.images.size());
    system.map50 = eval::mean_average_precision(system.scored, 0.5f);
    system.map50_serving = eval::mean_average_precision(eval::above_threshold(system.scored, run.serving_conf), 0.5f);
  }
}

MapDifference map_difference(const ScoredSystem& a, const ScoredSystem& b, const AccuracyRun& run, bool serving) {
  MapDifference difference;
  if (a.map50 < 0 || b.map50 < 0) return difference;
  difference.measured = true;
  if (serving) {
    difference.value = a.map50_serving - b.map50_serving;
    difference.ci95 = eval::bootstrap_map_difference(eval::above_threshold(a.scored, run.serving_conf),
                                                     eval::above_threshold(b.scored, run.serving_conf));
  } else {
    difference.value = a.map50 - b.map50;
    difference.ci95 = eval::bootstrap_map_difference(a.scored, b.scored);
  }
  return difference;
}

}  // namespace clouddetect
