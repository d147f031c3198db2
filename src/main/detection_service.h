// Wiring between the API types and the detector: bytes in, API response out. Lives in main/
// because it is the one place that knows both the HTTP-free core and the API shapes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "api/detect_types.h"
#include "backends/activation_ranges.h"
#include "detector/detector.h"
#include "http/server.h"
#include "main/options.h"

namespace clouddetect {

// options.resize, or when it is auto the better mode for `model` (default_resize_mode).
image::ResizeMode resize_mode(const ModelOptions& options, const darknet::Model& model);

// Builds the Detector that `options` describe (backend, precision, thresholds, resize mode). int8
// uses `ranges`, or loads them from calibration_path(options) when null.
std::unique_ptr<Detector> make_detector(std::shared_ptr<const darknet::Model> model, const ModelOptions& options,
                                        std::shared_ptr<const ActivationRanges> ranges = nullptr);

// A decoded image file (Error kNotFound / the decoder's errors).
cv::Mat read_image_file(const std::string& path, std::int64_t max_pixels = 1LL << 30);

// The network inputs of `images`, preprocessed as `options` (resize) say.
std::vector<Tensor> preprocess_images(const darknet::Model& model, const ModelOptions& options,
                                      const std::vector<std::string>& images);

// int8 calibration: `images` preprocessed as `options` (resize) say, run through the fp32 network.
ActivationRanges calibrate_on_images(const std::shared_ptr<const darknet::Model>& model, const ModelOptions& options,
                                     const std::vector<std::string>& images);

api::DetectResponse to_response(const std::string& id, const std::vector<Detection>& detections,
                                const std::vector<std::string>& class_names);

// What the HTTP layer admits by (http::WorkModel), measured on this process: a moving estimate of
// one request's service time (seeded by the warm-up), the model's footprint, and the bytes a
// request's image takes while it is served. Threading: any thread.
class ServiceEstimates : public http::WorkModel {
 public:
  double service_seconds() const override;
  // The resident memory measured after the warm-up; until then, the resident memory now.
  std::int64_t footprint_bytes() const override;
  std::int64_t working_bytes(const api::DetectRequest& request) const override;

  void observe(double seconds);  // one request served (or a warm-up inference)
  void set_footprint(std::int64_t bytes) { footprint_ = bytes; }

 private:
  mutable std::mutex mutex_;
  double service_seconds_ = 0;
  std::atomic<std::int64_t> footprint_{0};
};

// One Detector per worker; run() is called with the worker's index, so no two threads ever share a
// Detector and no lock is needed.
class DetectionService {
 public:
  // `estimates` (may be null) learns each request's service time.
  DetectionService(std::shared_ptr<const darknet::Model> model, const ModelOptions& options, int workers,
                   std::int64_t max_pixels, std::shared_ptr<ServiceEstimates> estimates = nullptr);

  api::DetectResponse run(const api::DetectRequest& request, int worker);

  // Two inferences per worker on a synthetic image, so the first request is not slow; the second
  // seeds the service time estimate.
  void warm_up();

  const darknet::Model& model() const { return *model_; }
  // The backend's kernels (summarize_kernels); every worker runs the same ones.
  std::string kernel_summary() const;
  // int8 only: what the calibration file lacks for the best accuracy (empty when nothing).
  const std::string& calibration_advice() const { return calibration_advice_; }

 private:
  std::shared_ptr<const darknet::Model> model_;
  std::string calibration_advice_;
  std::vector<std::unique_ptr<Detector>> detectors_;
  std::int64_t max_pixels_;
  std::shared_ptr<ServiceEstimates> estimates_;
};

}  // namespace clouddetect
