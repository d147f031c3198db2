// Every knob of the command line, with its default, in one place; --help prints these defaults.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "http/server.h"
#include "image/letterbox.h"

namespace clouddetect {

inline constexpr const char* kVersion = "0.1.0";

struct ModelOptions {
  std::string model_dir = "models/yolov3-tiny";
  std::string backend;  // empty = default_backend()
  Precision precision = Precision::kFp32;
  std::string calibration;                  // int8 activation ranges; empty = <model_dir>/activation-ranges.json
  std::optional<image::ResizeMode> resize;  // empty = auto: the better mode for the model
  float conf = 0.5f;
  float nms = 0.45f;
  int threads = 1;  // intra-op threads per worker
};

// The HTTP server's own defaults (http::ServerOptions), so that each is written once.
inline const http::ServerOptions kServerDefaults{};

inline int whole_seconds(std::chrono::milliseconds duration) {
  return static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(duration).count());
}

struct ServeOptions {
  ModelOptions model;
  std::string host = kServerDefaults.host;
  int port = kServerDefaults.port;
  std::string port_file;  // written (atomically) with the bound port once listening; empty = none
  int workers = 0;        // 0 = from the cgroup CPU quota
  int io_threads = kServerDefaults.io_threads;
  int queue = static_cast<int>(kServerDefaults.max_queue);        // a plain bound (admission is by --max-wait)
  std::chrono::milliseconds max_wait = kServerDefaults.max_wait;  // docs/CONTRACT.md says why its default
  std::int64_t memory_limit = 0;  // bytes; 0 = the container's limit (cgroup), else the RAM
  std::int64_t max_body_bytes = static_cast<std::int64_t>(kServerDefaults.max_body_bytes);
  std::int64_t max_pixels = 40'000'000;
  int max_connections = static_cast<int>(kServerDefaults.max_connections);
  int header_timeout_s = whole_seconds(kServerDefaults.header_timeout);
  int body_timeout_s = whole_seconds(kServerDefaults.body_timeout);
  int keepalive_timeout_s = whole_seconds(kServerDefaults.keepalive_idle_timeout);
  int drain_seconds = static_cast<int>(kServerDefaults.drain_seconds.count());
  std::string log_format = kServerDefaults.log_format;
  std::string api_key;
  std::string api_key_file;  // e.g. a mounted Kubernetes secret; wins over api_key
  bool protect_metrics = kServerDefaults.protect_metrics;
  std::vector<std::string> cors_origins;
};

struct DetectOptions {
  ModelOptions model;
  std::vector<std::string> images;
  std::string annotate;  // output path of the annotated image (one input image only)
  std::int64_t max_pixels = 40'000'000;
};

struct BenchOptions {
  ModelOptions model;
  std::vector<std::string> backends;  // empty = every backend built in
  std::vector<Precision> precisions = {Precision::kFp32};
  std::string image;  // empty = a coco128 image from CLOUDDETECT_SHARED, else a synthetic one
  int iterations = 30;
  int warmup = 3;
  // mAP@0.5 of every contender on a labelled set (always when int8 is benchmarked).
  bool accuracy = false;
  std::string dataset;  // images/ + labels/; empty = $CLOUDDETECT_SHARED/data/coco128
  // mAP integrates the whole precision-recall curve: darknet's `detector map` keeps boxes down to 0.005.
  float accuracy_conf = 0.005f;
  // int8 without a ranges file: calibrate on the first N images of this set (empty =
  // $CLOUDDETECT_SHARED/data/coco128); those images are never scored.
  std::string calibration_dataset;
  int calibration_images = 32;
};

struct CalibrateOptions {
  ModelOptions model;
  std::string images;  // a folder of images; empty = $CLOUDDETECT_SHARED/data/coco128/images
  int limit = 128;     // coco128: all of it (ranges from 32 images held less well on new images)
  std::string out;     // empty = <model_dir>/activation-ranges.json
  // Mixed precision: keep the convolutions whose int8 error costs the most in fp32 until the raw
  // heads' relative error against fp32 (mean over the first `sensitivity_images` calibration
  // images) is at most this; 0 = every convolution in int8.
  double head_error_budget = 0;
  int max_fp32_layers = 8;
  int sensitivity_images = 16;
};

// $CLOUDDETECT_SHARED (default ../shared): the models and data the tests and benchmarks read.
std::string shared_dir();
// The activation ranges file that options.calibration names, or the model folder's default.
std::string calibration_path(const ModelOptions& options);

}  // namespace clouddetect
