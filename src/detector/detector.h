// Image in, detections out: preprocess -> backend -> decode heads -> NMS -> original pixels.
//
// Threading: a Detector owns one Backend and its buffers; use one per worker thread, never
// concurrently. The Model is shared read-only.
#pragma once

#include <memory>
#include <opencv2/core/mat.hpp>
#include <vector>

#include "backends/backend.h"
#include "core/types.h"
#include "image/letterbox.h"
#include "yolo/decode_heads.h"

namespace clouddetect {

struct DetectorOptions {
  float score_threshold = 0.5f;
  float nms_threshold = 0.45f;
  image::ResizeMode resize = image::ResizeMode::kStretch;
};

class Detector {
 public:
  Detector(std::shared_ptr<const darknet::Model> model, std::unique_ptr<Backend> backend,
           const DetectorOptions& options);

  // bgr: decoded 8-bit BGR image. Boxes are in pixels of `bgr`, clipped to it.
  std::vector<Detection> detect(const cv::Mat& bgr);

  // The raw head tensors of the last detect() (for tests and benchmarks).
  const std::vector<Tensor>& last_heads() const { return heads_; }
  const darknet::Model& model() const { return *model_; }
  Backend& backend() { return *backend_; }
  const Backend& backend() const { return *backend_; }

 private:
  std::shared_ptr<const darknet::Model> model_;
  std::unique_ptr<Backend> backend_;
  DetectorOptions options_;
  image::Preprocessor preprocessor_;
  Tensor input_;
  std::vector<Tensor> heads_;
  std::vector<yolo::Candidate> candidates_;
};

// The resize mode that measured the better mAP for this model (see docs/PERFORMANCE.md, "Accuracy"):
// the cfg's own letter_box key when it has one, else stretch.
image::ResizeMode default_resize_mode(const darknet::Model& model);

}  // namespace clouddetect
