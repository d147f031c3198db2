#include "main/detection_service.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "core/container_limits.h"
#include "core/error.h"
#include "image/annotate.h"
#include "image/decode.h"

namespace clouddetect {

std::string shared_dir() {
  const char* shared = std::getenv("CLOUDDETECT_SHARED");
  return shared && *shared ? shared : "../shared";
}

std::string calibration_path(const ModelOptions& options) {
  return options.calibration.empty() ? options.model_dir + "/activation-ranges.json" : options.calibration;
}

image::ResizeMode resize_mode(const ModelOptions& options, const darknet::Model& model) {
  return options.resize ? *options.resize : default_resize_mode(model);
}

std::unique_ptr<Detector> make_detector(std::shared_ptr<const darknet::Model> model, const ModelOptions& options,
                                        std::shared_ptr<const ActivationRanges> ranges) {
  DetectorOptions detector_options;
  detector_options.score_threshold = options.conf;
  detector_options.nms_threshold = options.nms;
  detector_options.resize = resize_mode(options, *model);
  BackendOptions backend_options;
  backend_options.threads = options.threads;
  backend_options.precision = options.precision;
  if (options.precision == Precision::kInt8) {
    backend_options.activation_ranges =
        ranges ? ranges
               : std::make_shared<const ActivationRanges>(load_activation_ranges(calibration_path(options), *model));
  }
  auto backend = create_backend(options.backend, model, backend_options);
  return std::make_unique<Detector>(std::move(model), std::move(backend), detector_options);
}

cv::Mat read_image_file(const std::string& path, std::int64_t max_pixels) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot open " + path);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return image::decode(bytes, max_pixels);
}

std::vector<Tensor> preprocess_images(const darknet::Model& model, const ModelOptions& options,
                                      const std::vector<std::string>& images) {
  image::Preprocessor preprocessor(model.width, model.height, resize_mode(options, model));
  std::vector<Tensor> inputs(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) preprocessor.run(read_image_file(images[i]), inputs[i]);
  return inputs;
}

ActivationRanges calibrate_on_images(const std::shared_ptr<const darknet::Model>& model, const ModelOptions& options,
                                     const std::vector<std::string>& images) {
  return measure_activation_ranges(model, preprocess_images(*model, options, images), options.threads);
}

std::string DetectionService::kernel_summary() const {
  return summarize_kernels(detectors_.front()->backend().kernels());
}

api::DetectResponse to_response(const std::string& id, const std::vector<Detection>& detections,
                                const std::vector<std::string>& class_names) {
  api::DetectResponse response;
  response.id = id;
  response.objects.reserve(detections.size());
  for (const Detection& d : detections) {
    api::DetectedObject object;
    object.label = class_names.at(static_cast<std::size_t>(d.class_id));
    object.accuracy = d.score;
    // Round the corners, not the size, so adjacent boxes stay adjacent; both stay inside the image.
    int left = static_cast<int>(std::lround(d.box.x));
    int top = static_cast<int>(std::lround(d.box.y));
    object.rectangle = {left, top, static_cast<int>(std::lround(d.box.x + d.box.w)) - left,
                        static_cast<int>(std::lround(d.box.y + d.box.h)) - top};
    response.objects.push_back(std::move(object));
  }
  return response;
}

namespace {
// The moving service time averages over about the last kServiceTimeWindow seconds of work, and over no
// fewer than 5 requests nor more than 50: in a CPU-throttled pod one request's wall time swings by
// half its mean from one to the next, and the expected wait multiplies the estimate by the queue, so
// a short average of fast requests made admission refuse at random near --max-wait.
constexpr double kServiceTimeWindowSeconds = 2.5;
constexpr double kMinServiceTimeWeight = 1.0 / 50, kMaxServiceTimeWeight = 1.0 / 5;
// The network's input and its resized copy of the image, beyond the decoded pixels (an upper bound).
constexpr std::int64_t kPreprocessBytes = 8 << 20;
// An annotated answer holds the image's copy with boxes (3 B/px) and its JPEG, base64 and JSON
// forms (each under 2 B/px at quality 90), beside the decoded image.
constexpr std::int64_t kAnnotateBytesPerPixel = 6;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

double ServiceEstimates::service_seconds() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return service_seconds_;
}

void ServiceEstimates::observe(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (service_seconds_ == 0) {
    service_seconds_ = seconds;
    return;
  }
  // From the estimate, not from this request: weighting long requests more would bias the mean up.
  const double weight =
      std::clamp(service_seconds_ / kServiceTimeWindowSeconds, kMinServiceTimeWeight, kMaxServiceTimeWeight);
  service_seconds_ = (1 - weight) * service_seconds_ + weight * seconds;
}

std::int64_t ServiceEstimates::footprint_bytes() const {
  const std::int64_t measured = footprint_;
  return measured > 0 ? measured : resident_memory_bytes();
}

std::int64_t ServiceEstimates::working_bytes(const api::DetectRequest& request) const {
  const std::int64_t decoded = image::decode_peak_bytes(request.image.data(), request.image.size());
  if (decoded == 0) return 0;  // refused before any pixel is allocated
  std::int64_t bytes = decoded + kPreprocessBytes;
  if (request.annotate) {
    const auto size = image::peek_size(request.image.data(), request.image.size());
    bytes += kAnnotateBytesPerPixel * static_cast<std::int64_t>(size->width) * size->height;
  }
  return bytes;
}

DetectionService::DetectionService(std::shared_ptr<const darknet::Model> model, const ModelOptions& options,
                                   int workers, std::int64_t max_pixels, std::shared_ptr<ServiceEstimates> estimates)
    : model_(std::move(model)), max_pixels_(max_pixels), estimates_(std::move(estimates)) {
  std::shared_ptr<const ActivationRanges> ranges;
  if (options.precision == Precision::kInt8) {
    ranges = std::make_shared<const ActivationRanges>(load_activation_ranges(calibration_path(options), *model_));
    if (ranges->channel_mean.empty()) {
      calibration_advice_ = calibration_path(options) +
                            " has no channel means (made before int8 bias correction): run `clouddetect calibrate` "
                            "again for int8's best accuracy";
    }
  }
  for (int i = 0; i < workers; ++i) detectors_.push_back(make_detector(model_, options, ranges));
}

api::DetectResponse DetectionService::run(const api::DetectRequest& request, int worker) {
  const auto start = std::chrono::steady_clock::now();
  Detector& detector = *detectors_.at(static_cast<std::size_t>(worker));
  cv::Mat image = image::decode(request.image, max_pixels_);
  std::vector<Detection> detections = detector.detect(image);
  api::DetectResponse response = to_response(request.id, detections, model_->class_names);
  if (request.annotate) {
    response.annotated_jpeg = image::encode_jpeg(image::annotate(image, detections, model_->class_names));
  }
  if (estimates_) estimates_->observe(seconds_since(start));
  return response;
}

void DetectionService::warm_up() {
  cv::Mat image(model_->height, model_->width, CV_8UC3, cv::Scalar(127, 127, 127));
  for (auto& detector : detectors_) {
    detector->detect(image);  // the first pass pays one-time costs (JIT, first touch of buffers)
    const auto start = std::chrono::steady_clock::now();
    detector->detect(image);
    if (estimates_) estimates_->observe(seconds_since(start));
  }
  if (estimates_) estimates_->set_footprint(resident_memory_bytes());
}

}  // namespace clouddetect
