#include "darknet/synthetic_weights.h"

#include <cmath>
#include <random>

namespace clouddetect::darknet {

void fill_synthetic_weights(Model& model, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (Layer& layer : model.layers) {
    if (layer.type != LayerType::kConvolutional) continue;
    const auto& p = layer.convolutional;
    const std::size_t filters = static_cast<std::size_t>(p.filters);
    const std::size_t fan_in = static_cast<std::size_t>(layer.input.c / p.groups * p.size * p.size);
    auto& w = layer.weights;
    // He initialisation keeps activations in a sane range through the whole network.
    w.weights.resize(filters * fan_in);
    const float sigma = std::sqrt(2.0f / static_cast<float>(fan_in));
    for (float& x : w.weights) x = sigma * normal(rng);
    w.biases.resize(filters);
    for (float& x : w.biases) x = 0.1f * normal(rng);
    if (p.batch_normalize) {
      w.scales.resize(filters);
      w.rolling_mean.resize(filters);
      w.rolling_variance.resize(filters);
      for (std::size_t f = 0; f < filters; ++f) {
        w.scales[f] = 0.8f + 0.4f * uniform(rng);
        w.rolling_mean[f] = 0.2f * (uniform(rng) - 0.5f);
        w.rolling_variance[f] = 0.5f + uniform(rng);
      }
    }
  }
}

}  // namespace clouddetect::darknet
