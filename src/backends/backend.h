// The inference backend interface: runs a darknet::Model and returns the raw [yolo] head tensors,
// undecoded, so backends can be compared tensor for tensor and decoding/NMS exist once.
//
// Threading and lifetime: one Backend instance per worker thread; forward() is not re-entrant and
// must not be called concurrently on one instance, but different instances may run concurrently.
// The Model is shared read-only by all instances and must outlive none of them (shared_ptr).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.h"
#include "darknet/model.h"

namespace clouddetect {

struct BackendOptions {
  int threads = 1;                 // intra-op threads of this instance
  std::string precision = "fp32";  // "fp32"; a backend may also support "int8"
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
};

// The one place that lists backends. Throws Error{kInvalidArgument} naming available_backends()
// for an unknown or unbuilt name, or a precision the backend does not support. No fallback.
std::unique_ptr<Backend> create_backend(const std::string& name,
                                        std::shared_ptr<const darknet::Model> model,
                                        const BackendOptions& options);
std::vector<std::string> available_backends();

// The fastest backend built in: "native" when oneDNN is available, else "opencv".
std::string default_backend();

}  // namespace clouddetect
