// The inference backend interface: runs a darknet::Model and returns the raw [yolo] head tensors,
// undecoded, so backends can be compared tensor for tensor and decoding/NMS exist once.
//
// Threading and lifetime: one Backend instance per worker thread; forward() is not re-entrant and
// must not be called concurrently on one instance, but different instances may run concurrently.
// The Model is shared read-only by all instances and must outlive none of them (shared_ptr).
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.h"
#include "darknet/model.h"

namespace clouddetect {

// What int8 quantisation needs to know of a model's activations: the range of every output
// channel of every layer (indexed by cfg layer), measured in fp32 on sample images
// (`clouddetect calibrate`).
struct ActivationRanges {
  std::string model;                            // darknet::Model::name it was measured on
  std::vector<float> absmax;                    // per layer: the largest |value| of any channel
  std::vector<std::vector<float>> channel_min;  // per layer, one per output channel
  std::vector<std::vector<float>> channel_max;
  // Per layer and channel, the mean and standard deviation over the images of each image's largest
  // |value|: how far the maximum moves from image to image. Empty in files from before they were kept.
  std::vector<std::vector<float>> channel_peak_mean;
  std::vector<std::vector<float>> channel_peak_sd;
  int images = 0;      // how many images were measured
  std::string source;  // which images ("the first 32 images of DIR"); empty in older files
  // Convolutions int8 keeps in fp32 (mixed precision, chosen by `calibrate --head-error-budget`).
  std::vector<int> fp32_layers;
  bool keeps_fp32(int layer) const {
    return std::find(fp32_layers.begin(), fp32_layers.end(), layer) != fp32_layers.end();
  }
};

struct BackendOptions {
  int threads = 1;                 // intra-op threads of this instance
  std::string precision = "fp32";  // "fp32"; a backend may also support "int8"
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

// The one place that lists backends. Throws Error{kInvalidArgument} naming available_backends()
// for an unknown or unbuilt name, or a precision the backend does not support. No fallback.
std::unique_ptr<Backend> create_backend(const std::string& name, std::shared_ptr<const darknet::Model> model,
                                        const BackendOptions& options);
std::vector<std::string> available_backends();

// The fastest backend built in: "native" when oneDNN is available, else "opencv".
std::string default_backend();

// Runs `inputs` (preprocessed images) through the fp32 native backend and records every layer's
// largest |output|. Throws Error{kInvalidArgument} when the native backend is not built.
ActivationRanges measure_activation_ranges(std::shared_ptr<const darknet::Model> model,
                                           const std::vector<Tensor>& inputs, int threads = 1);

// A small JSON file. load() checks that it was measured on `model` (name and layer count) and
// throws Error{kInvalidArgument} with the path otherwise, or Error{kNotFound} when it is missing.
void save_activation_ranges(const ActivationRanges& ranges, const std::string& path);
ActivationRanges load_activation_ranges(const std::string& path, const darknet::Model& model);
// True when `ranges` has every per-layer and per-channel array, sized for `model`. Inline: the
// native backend checks it too and does not link this library.
inline bool activation_ranges_fit(const ActivationRanges& ranges, const darknet::Model& model) {
  const std::size_t layers = model.layers.size();
  if (ranges.absmax.size() != layers || ranges.channel_min.size() != layers || ranges.channel_max.size() != layers ||
      ranges.channel_peak_mean.size() != layers || ranges.channel_peak_sd.size() != layers) {
    return false;
  }
  for (const darknet::Layer& layer : model.layers) {
    const auto i = static_cast<std::size_t>(layer.index);
    const auto channels = static_cast<std::size_t>(layer.output.c);
    if (ranges.channel_min[i].size() != channels || ranges.channel_max[i].size() != channels ||
        ranges.channel_peak_mean[i].size() != channels || ranges.channel_peak_sd[i].size() != channels) {
      return false;
    }
  }
  return true;
}

}  // namespace clouddetect
