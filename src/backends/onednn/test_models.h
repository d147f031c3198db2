// Models for the native backend's tests and benchmark: the shipped folders with their real
// weights, or a cfg-only folder (yolov3-tiny) with deterministic synthetic weights.
#pragma once

#include <cmath>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "darknet/cfg_parser.h"
#include "darknet/model_loader.h"

namespace clouddetect::onednn::testing {

// He-scaled normal weights, small biases, batch-norm statistics away from the identity so that
// folding is exercised. Same values on every run.
inline void fill_synthetic_weights(darknet::Model& model, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (darknet::Layer& layer : model.layers) {
    if (layer.type != darknet::LayerType::kConvolutional) continue;
    const auto& p = layer.convolutional;
    const std::size_t filters = static_cast<std::size_t>(p.filters);
    const std::size_t fan_in = static_cast<std::size_t>(layer.input.c / p.groups * p.size * p.size);
    auto& w = layer.weights;
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

// A folder with .weights loads as is; a folder with only a .cfg gets synthetic weights.
inline std::shared_ptr<const darknet::Model> load_test_model(const std::string& directory) {
  std::string cfg;
  bool has_weights = false;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    if (entry.path().extension() == ".cfg") cfg = entry.path().string();
    if (entry.path().extension() == ".weights") has_weights = true;
  }
  if (has_weights) return darknet::load_model(directory);
  auto model = std::make_shared<darknet::Model>(darknet::parse_cfg_file(cfg));
  fill_synthetic_weights(*model);
  return model;
}

}  // namespace clouddetect::onednn::testing
