#include "darknet/synthetic_weights.h"

#include <cmath>
#include <random>

namespace clouddetect::darknet {

void fill_synthetic_weights(Model& model, unsigned seed) {
  std::mt19937 rng(seed);
  for (auto& layer : model.layers) {
    if (layer.type != LayerType::kConvolutional) continue;
    const auto& p = layer.convolutional;
    auto& w = layer.weights;
    std::normal_distribution<float> bias(0.0f, 0.1f);
    w.biases.resize(static_cast<std::size_t>(p.filters));
    for (float& b : w.biases) b = bias(rng);
    if (p.batch_normalize) {
      w.scales.assign(static_cast<std::size_t>(p.filters), 1.0f);
      w.rolling_mean.assign(static_cast<std::size_t>(p.filters), 0.0f);
      w.rolling_variance.assign(static_cast<std::size_t>(p.filters), 1.0f);
    }
    // He initialisation keeps activations in a sane range through the whole network.
    const int fan_in = layer.input.c / p.groups * p.size * p.size;
    std::normal_distribution<float> weight(0.0f, std::sqrt(2.0f / static_cast<float>(fan_in)));
    w.weights.resize(static_cast<std::size_t>(p.filters) * static_cast<std::size_t>(fan_in));
    for (float& v : w.weights) v = weight(rng);
  }
}

}  // namespace clouddetect::darknet
