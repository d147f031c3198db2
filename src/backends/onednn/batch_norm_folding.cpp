#include "backends/onednn/batch_norm_folding.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace clouddetect::onednn {

namespace {

// gamma / sqrt(var + eps) per filter, or 1 without batch norm.
std::vector<float> batch_norm_factors(const darknet::Layer& layer) {
  const auto& w = layer.weights;
  std::vector<float> factors(static_cast<std::size_t>(layer.convolutional.filters), 1.0f);
  if (layer.convolutional.batch_normalize) {
    for (std::size_t f = 0; f < factors.size(); ++f) {
      factors[f] = w.scales[f] / std::sqrt(w.rolling_variance[f] + kBatchNormEpsilon);
    }
  }
  return factors;
}

}  // namespace

std::vector<float> fold_batch_norm_weights(const darknet::Layer& layer) {
  if (layer.weights.weights.empty()) {
    throw Error(ErrorCode::kInternal, "layer " + std::to_string(layer.index) +
                                          ": its weights were released (darknet::release_weights) before this layout"
                                          " was prepared");
  }
  std::vector<float> folded = layer.weights.weights;
  const std::vector<float> factors = batch_norm_factors(layer);
  const std::size_t per_filter = folded.size() / factors.size();
  for (std::size_t f = 0; f < factors.size(); ++f) {
    for (std::size_t i = 0; i < per_filter; ++i) folded[f * per_filter + i] *= factors[f];
  }
  return folded;
}

std::vector<float> fold_batch_norm_bias(const darknet::Layer& layer) {
  std::vector<float> bias = layer.weights.biases;
  if (layer.convolutional.batch_normalize) {
    const std::vector<float> factors = batch_norm_factors(layer);
    for (std::size_t f = 0; f < bias.size(); ++f) bias[f] -= factors[f] * layer.weights.rolling_mean[f];
  }
  return bias;
}

}  // namespace clouddetect::onednn
