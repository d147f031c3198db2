#include "darknet/synthetic_weights.h"

#include <cmath>
#include <random>
#include <vector>

namespace clouddetect::darknet {
namespace {

// The convolutions that end a residual branch: the previous layer of a [shortcut], through
// dropouts. Their output is scaled down (kBranchScale) so that the sum of 23 residual blocks
// (yolov3, yolov4) grows the activations ~3x rather than ~2^11x: with identity-like blocks the
// full-size networks' heads overflow exp() in decoding and mish's range.
std::vector<bool> residual_branch_ends(const Model& model) {
  std::vector<bool> ends(model.layers.size(), false);
  for (const Layer& layer : model.layers) {
    if (layer.type != LayerType::kShortcut) continue;
    int k = layer.index - 1;
    while (k > 0 && model.layers[static_cast<std::size_t>(k)].type == LayerType::kDropout) --k;
    if (k >= 0 && k != layer.shortcut.from) ends[static_cast<std::size_t>(k)] = true;
  }
  return ends;
}

constexpr float kBranchScale = 0.3f;

// The convolutions a [yolo] layer reads get weights this much smaller than variance-preserving: the
// activations before them reach an rms of ~10 in the full-size networks, and logits of that size
// would make almost every cell a confident box of e^10 times its anchor (real heads: a few).
constexpr float kHeadScale = 0.2f;

}  // namespace

void fill_synthetic_weights(Model& model, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> bias(0.0f, 0.1f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  const std::vector<bool> branch_ends = residual_branch_ends(model);
  for (auto& layer : model.layers) {
    if (layer.type != LayerType::kConvolutional) continue;
    const auto& p = layer.convolutional;
    auto& w = layer.weights;
    const float branch = branch_ends[static_cast<std::size_t>(layer.index)] ? kBranchScale : 1.0f;
    w.biases.resize(static_cast<std::size_t>(p.filters));
    for (float& b : w.biases) b = branch * bias(rng);
    if (p.batch_normalize) {
      // Statistics away from the identity, so that folding them is exercised, with a scale
      // gamma / sqrt(variance) within 5% of `branch`: activations neither grow nor fade with depth.
      w.scales.resize(static_cast<std::size_t>(p.filters));
      w.rolling_mean.resize(static_cast<std::size_t>(p.filters));
      w.rolling_variance.resize(static_cast<std::size_t>(p.filters));
      for (std::size_t f = 0; f < w.scales.size(); ++f) {
        w.rolling_variance[f] = 0.5f + 1.5f * uniform(rng);
        w.rolling_mean[f] = 0.1f * (uniform(rng) - 0.5f);
        w.scales[f] = branch * std::sqrt(w.rolling_variance[f]) * (0.95f + 0.1f * uniform(rng));
      }
    }
    // He initialisation keeps activations in a sane range through the whole network; a linear
    // convolution (a head) keeps the variance of its input.
    const int fan_in = layer.input.c / p.groups * p.size * p.size;
    const float gain = p.activation == Activation::kLinear ? 1.0f : 2.0f;
    const bool head = static_cast<std::size_t>(layer.index) + 1 < model.layers.size() &&
                      model.layers[static_cast<std::size_t>(layer.index) + 1].type == LayerType::kYolo;
    std::normal_distribution<float> weight(0.0f,
                                           (head ? kHeadScale : 1.0f) * std::sqrt(gain / static_cast<float>(fan_in)));
    w.weights.resize(static_cast<std::size_t>(p.filters) * static_cast<std::size_t>(fan_in));
    for (float& v : w.weights) v = (p.batch_normalize ? 1.0f : branch) * weight(rng);
  }
}

}  // namespace clouddetect::darknet
