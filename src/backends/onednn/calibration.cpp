// int8 calibration on the native engine: the fp32 network with every layer's output kept
// (Mode::kCalibrate), measured after each image.
#include <algorithm>
#include <cmath>

#include "backends/onednn/network.h"
#include "backends/onednn/onednn_backend.h"
#include "core/error.h"

namespace clouddetect::onednn {

using dnnl::memory;

namespace {

// Widens `ranges` by the outputs of the network's last forward(); `peaks` gets each layer's largest
// |value| per channel, `sums` adds each channel's values (in double: millions of them).
void record_ranges(const Network& network, ActivationRanges& ranges, std::vector<std::vector<float>>& peaks,
                   std::vector<std::vector<double>>& sums) {
  const std::vector<memory>& outputs = network.layer_outputs();
  peaks.resize(outputs.size());
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const memory::desc md = outputs[i].get_desc();
    // fp32 in nchw or a blocked layout (nChw16c...): element k is channel
    // (k / (h * w * block)) * block + k % block; the padding channels hold zeros.
    const int block = channel_block(md);
    const memory::dims dims = md.dims();
    if (block == 0 || (md != network.plan().activation_desc(dims) && md != plain_desc(dims))) {
      throw Error(ErrorCode::kInternal, "native backend: cannot measure a layer output in this layout");
    }
    const std::size_t plane = static_cast<std::size_t>(dims[2] * dims[3]) * static_cast<std::size_t>(block);
    const float* data = static_cast<const float*>(outputs[i].get_data_handle());
    const std::size_t count = md.get_size() / sizeof(float);
    std::vector<float>& lowest = ranges.channel_min[i];
    std::vector<float>& highest = ranges.channel_max[i];
    std::vector<float>& peak = peaks[i];
    peak.assign(lowest.size(), 0.0f);
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t channel = k / plane * static_cast<std::size_t>(block) + k % static_cast<std::size_t>(block);
      if (channel >= lowest.size()) continue;
      lowest[channel] = std::min(lowest[channel], data[k]);
      highest[channel] = std::max(highest[channel], data[k]);
      peak[channel] = std::max(peak[channel], std::abs(data[k]));
      sums[i][channel] += data[k];
    }
    for (std::size_t c = 0; c < lowest.size(); ++c) {
      ranges.absmax[i] = std::max({ranges.absmax[i], -lowest[c], highest[c]});
    }
  }
}

// Zeroed ranges of every layer's channels.
ActivationRanges empty_ranges(const darknet::Model& model) {
  ActivationRanges ranges;
  ranges.model = model.name;
  ranges.absmax.assign(model.layers.size(), 0.0f);
  for (const darknet::Layer& layer : model.layers) {
    ranges.channel_min.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0f);
    ranges.channel_max.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0f);
    ranges.channel_peak_mean.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0f);
    ranges.channel_peak_sd.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0f);
    ranges.channel_mean.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0f);
  }
  return ranges;
}

}  // namespace

ActivationRanges measure_activation_ranges(std::shared_ptr<const darknet::Model> model,
                                           const std::vector<Tensor>& inputs, int threads) {
  if (inputs.empty()) throw Error(ErrorCode::kInvalidArgument, "calibration needs at least one image");
  ActivationRanges ranges = empty_ranges(*model);
  Network network(model, threads, Mode::kCalibrate);
  std::vector<Tensor> heads;
  std::vector<std::vector<float>> peaks;
  // Welford's running mean and sum of squared deviations, in double: peaks of similar size would
  // lose the deviation to cancellation in float sums of squares.
  std::vector<std::vector<double>> mean, squares, sums;
  for (const darknet::Layer& layer : model->layers) {
    mean.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0);
    squares.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0);
    sums.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0);
  }
  for (const Tensor& input : inputs) {
    network.forward(input, heads);
    record_ranges(network, ranges, peaks, sums);
    ++ranges.images;
    for (std::size_t i = 0; i < peaks.size(); ++i) {
      for (std::size_t c = 0; c < peaks[i].size(); ++c) {
        const double delta = peaks[i][c] - mean[i][c];
        mean[i][c] += delta / ranges.images;
        squares[i][c] += delta * (peaks[i][c] - mean[i][c]);
      }
    }
  }
  for (std::size_t i = 0; i < mean.size(); ++i) {
    for (std::size_t c = 0; c < mean[i].size(); ++c) {
      ranges.channel_peak_mean[i][c] = static_cast<float>(mean[i][c]);
      ranges.channel_peak_sd[i][c] = static_cast<float>(std::sqrt(squares[i][c] / ranges.images));
      const darknet::Layer& layer = model->layers[i];
      ranges.channel_mean[i][c] =
          static_cast<float>(sums[i][c] / (static_cast<double>(layer.output.h * layer.output.w) * ranges.images));
    }
  }
  return ranges;
}

}  // namespace clouddetect::onednn
