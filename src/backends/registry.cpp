// The one place that lists backends: each built-in backend registers itself once, in the table
// below, guarded by its build option (ggml's ggml-backend-reg.cpp).
#include <algorithm>
#include <string>

#include "backends/activation_ranges.h"
#include "backends/backend.h"
#include "backends/opencv/opencv_backend.h"
#include "core/error.h"
#if CLOUDDETECT_HAS_ONEDNN
#include "backends/onednn/onednn_backend.h"
#endif

namespace clouddetect {
namespace {

struct BackendEntry {
  const char* name;
  std::vector<Precision> precisions;  // what it runs; create_backend refuses the others
  std::unique_ptr<Backend> (*make)(std::shared_ptr<const darknet::Model>, const BackendOptions&);
  // (optional) int8 calibration: every layer's output ranges, measured in fp32.
  ActivationRanges (*measure_ranges)(std::shared_ptr<const darknet::Model>, const std::vector<Tensor>&,
                                     int threads) = nullptr;
  // (optional) at most the bytes of weights `instances` instances keep (backend_weights_bytes).
  std::int64_t (*weights_bytes)(const darknet::Model&, Precision, int instances) = nullptr;
};

// Slowest first (bench times them in this order); the last one is the default.
const std::vector<BackendEntry>& registry() {
  static const std::vector<BackendEntry> entries = {
    {"opencv", {Precision::kFp32}, make_opencv_backend, nullptr, opencv_weights_bytes},
#if CLOUDDETECT_HAS_ONEDNN
    {"native",
     {Precision::kFp32, Precision::kInt8},
     make_onednn_backend,
     onednn::measure_activation_ranges,
     onednn_weights_bytes},
#endif
  };
  return entries;
}

}  // namespace

std::vector<std::string> available_backends() {
  std::vector<std::string> names;
  for (const BackendEntry& entry : registry()) names.emplace_back(entry.name);
  return names;
}

std::string default_backend() { return registry().back().name; }

std::unique_ptr<Backend> create_backend(const std::string& name, std::shared_ptr<const darknet::Model> model,
                                        const BackendOptions& options) {
  for (const BackendEntry& entry : registry()) {
    if (name != entry.name) continue;
    if (std::find(entry.precisions.begin(), entry.precisions.end(), options.precision) == entry.precisions.end()) {
      std::string list;
      for (Precision precision : entry.precisions)
        list += (list.empty() ? "" : ", ") + std::string(to_string(precision));
      throw Error(ErrorCode::kInvalidArgument,
                  name + " backend supports precision " + list + ", not " + to_string(options.precision));
    }
    return entry.make(std::move(model), options);
  }
  std::string list;
  for (const auto& available : available_backends()) list += (list.empty() ? "" : ", ") + available;
  throw Error(ErrorCode::kInvalidArgument, "unknown backend '" + name + "' (available: " + list + ")");
}

std::int64_t backend_weights_bytes(const std::string& name, const darknet::Model& model, const BackendOptions& options,
                                   int instances) {
  for (const BackendEntry& entry : registry()) {
    if (name == entry.name && entry.weights_bytes) return entry.weights_bytes(model, options.precision, instances);
  }
  return 0;
}

ActivationRanges measure_activation_ranges(std::shared_ptr<const darknet::Model> model,
                                           const std::vector<Tensor>& inputs, int threads) {
  for (const BackendEntry& entry : registry()) {
    if (entry.measure_ranges) return entry.measure_ranges(std::move(model), inputs, threads);
  }
  throw Error(ErrorCode::kInvalidArgument, "int8 calibration needs the native backend, which is not built");
}

}  // namespace clouddetect
