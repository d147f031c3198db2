// The inference backend interface: runs a darknet::Model and returns the raw [yolo] head tensors,
// undecoded, so backends can be compared tensor for tensor and decoding/NMS exist once.
//
// Threading and lifetime: one Backend instance per worker thread; forward() is not re-entrant and
// must not be called concurrently on one instance, but different instances may run concurrently.
// The Model is shared read-only by all instances, each holding it (shared_ptr), so it lives as
// long as the last of them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.h"
#include "darknet/model.h"

namespace clouddetect {

struct ActivationRanges;  // backends/activation_ranges.h: what int8 calibration measured

// The arithmetic a backend runs the network in.
enum class Precision { kFp32, kInt8 };
const char* to_string(Precision precision);  // "fp32" | "int8"
// Throws Error{kInvalidArgument} naming the precisions for anything else.
Precision parse_precision(const std::string& name);

struct BackendOptions {
  int threads = 1;                         // intra-op threads of this instance
  Precision precision = Precision::kFp32;  // each backend declares the ones it runs (registry.cpp)
  // Required by int8 (native backend); ignored otherwise.
  std::shared_ptr<const ActivationRanges> activation_ranges;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;

  // input: shape {1, channels, height, width} of the model, RGB scaled to [0, 1].
  // heads: resized as needed (callers reuse the vector to avoid allocations); heads[i] is the
  // output of the layer feeding the i-th [yolo] layer, shape {1, mask*(5+classes), h, w}.
  // Throws Error{kInternal} on a library failure.
  virtual void forward(const Tensor& input, std::vector<Tensor>& heads) = 0;

  // The library kernels this instance runs, one per step, e.g. "jit_wino_4x3:avx512_core"; which
  // ones a CPU gets decides the speed, so the service logs them. Empty when the library does not say.
  virtual std::vector<std::string> kernels() const { return {}; }
};

// "name x count" for each distinct kernel, most used first.
std::string summarize_kernels(const std::vector<std::string>& kernels);

// The backends built in (registry.cpp lists each once). Throws Error{kInvalidArgument} naming
// available_backends() for an unknown or unbuilt name, or a precision the backend does not run.
// No fallback.
std::unique_ptr<Backend> create_backend(const std::string& name, std::shared_ptr<const darknet::Model> model,
                                        const BackendOptions& options);
std::vector<std::string> available_backends();

// At most the bytes of weights that `instances` backends `name` of `model` keep of their own,
// beside the model's raw ones, from the cfg alone (no weights need be loaded): what serve checks
// against the memory limit before loading. 0 for a backend that does not say.
std::int64_t backend_weights_bytes(const std::string& name, const darknet::Model& model, const BackendOptions& options,
                                   int instances);

// The fastest backend built in: "native" when oneDNN is available, else "opencv".
std::string default_backend();

}  // namespace clouddetect
