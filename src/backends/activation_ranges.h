// int8 calibration: the ranges of a model's activations, measured in fp32 on sample images
// (`clouddetect calibrate`), kept in a small JSON file, and read back by a backend running int8
// (BackendOptions::activation_ranges). Implementer-side: serving code only passes them through.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
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
  // Per layer and channel, the mean value over every pixel of every image (bias correction). Empty
  // in files from before it was kept.
  std::vector<std::vector<float>> channel_mean;
  int images = 0;      // how many images were measured
  std::string source;  // which images ("the first 32 images of DIR"); empty in older files
  // Convolutions int8 keeps in fp32 (mixed precision, chosen by `calibrate --head-error-budget`).
  std::vector<int> fp32_layers;
  bool keeps_fp32(int layer) const {
    return std::find(fp32_layers.begin(), fp32_layers.end(), layer) != fp32_layers.end();
  }
};

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
      ranges.channel_peak_mean.size() != layers || ranges.channel_peak_sd.size() != layers ||
      (!ranges.channel_mean.empty() && ranges.channel_mean.size() != layers)) {
    return false;
  }
  for (const darknet::Layer& layer : model.layers) {
    const auto i = static_cast<std::size_t>(layer.index);
    const auto channels = static_cast<std::size_t>(layer.output.c);
    if (ranges.channel_min[i].size() != channels || ranges.channel_max[i].size() != channels ||
        ranges.channel_peak_mean[i].size() != channels || ranges.channel_peak_sd[i].size() != channels ||
        (!ranges.channel_mean.empty() && ranges.channel_mean[i].size() != channels)) {
      return false;
    }
  }
  return true;
}

}  // namespace clouddetect
