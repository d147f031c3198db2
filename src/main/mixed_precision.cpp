#include "main/mixed_precision.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "eval/head_error.h"

namespace clouddetect {

namespace {

double macs(const darknet::Layer& layer) {
  const auto& p = layer.convolutional;
  return static_cast<double>(layer.output.size()) * (layer.input.c / p.groups) * p.size * p.size;
}

std::string describe(const darknet::Layer& layer) {
  const auto& p = layer.convolutional;
  const char* kind = p.groups > 1 && p.groups == layer.input.c ? "depthwise" : p.size == 1 ? "1x1" : "3x3";
  char text[96];
  std::snprintf(text, sizeof(text), "%s %d->%d %dx%d %s", kind, layer.input.c, layer.output.c, layer.output.w,
                layer.output.h, darknet::to_string(p.activation));
  return text;
}

}  // namespace

double int8_head_error(const std::shared_ptr<const darknet::Model>& model, const ActivationRanges& ranges,
                       const std::vector<Tensor>& inputs, const std::vector<std::vector<Tensor>>& reference,
                       int threads) {
  BackendOptions options;
  options.threads = threads;
  options.precision = Precision::kInt8;
  options.activation_ranges = std::make_shared<const ActivationRanges>(ranges);
  auto backend = create_backend("native", model, options);
  std::vector<Tensor> heads;
  double sum = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    backend->forward(inputs[i], heads);
    sum += eval::relative_head_error(heads, reference[i]);
  }
  return sum / static_cast<double>(inputs.size());
}

MixedPrecisionChoice choose_fp32_layers(const std::shared_ptr<const darknet::Model>& model,
                                        const ActivationRanges& ranges, const std::vector<Tensor>& inputs,
                                        double head_error_budget, int max_layers, int threads) {
  std::vector<std::vector<Tensor>> reference(inputs.size());
  BackendOptions fp32;
  fp32.threads = threads;
  auto backend = create_backend("native", model, fp32);
  for (std::size_t i = 0; i < inputs.size(); ++i) backend->forward(inputs[i], reference[i]);
  double total_macs = 0;
  for (const darknet::Layer& layer : model->layers) {
    if (layer.type == darknet::LayerType::kConvolutional) total_macs += macs(layer);
  }
  MixedPrecisionChoice choice;
  ActivationRanges trial = ranges;
  trial.fp32_layers.clear();
  choice.all_int8_error = int8_head_error(model, trial, inputs, reference, threads);
  std::fprintf(stderr, "head error on %zu calibration images, all int8: %.4f (budget %.4f)\n", inputs.size(),
               choice.all_int8_error, head_error_budget);
  if (choice.all_int8_error <= head_error_budget) return choice;
  for (const darknet::Layer& layer : model->layers) {
    if (layer.type != darknet::LayerType::kConvolutional) continue;
    trial.fp32_layers = {layer.index};
    choice.layers.push_back(
        {layer.index, int8_head_error(model, trial, inputs, reference, threads), macs(layer) / total_macs});
  }
  std::stable_sort(choice.layers.begin(), choice.layers.end(),
                   [](const LayerSensitivity& a, const LayerSensitivity& b) { return a.head_error < b.head_error; });
  std::fprintf(stderr, "with one layer in fp32:\n");
  for (const LayerSensitivity& s : choice.layers) {
    std::fprintf(stderr, "  layer %3d  %-34s %5.1f%% of MACs  head error %.4f (%+.4f)\n", s.layer,
                 describe(model->layers[static_cast<std::size_t>(s.layer)]).c_str(), 100 * s.macs_share, s.head_error,
                 s.head_error - choice.all_int8_error);
  }
  // Greedy: add the next most sensitive layer while it helps and the budget is not met.
  double error = choice.all_int8_error;
  trial.fp32_layers.clear();
  for (const LayerSensitivity& s : choice.layers) {
    if (error <= head_error_budget || static_cast<int>(choice.fp32_layers.size()) >= max_layers) break;
    if (s.head_error >= choice.all_int8_error) break;  // the rest do not help
    trial.fp32_layers.push_back(s.layer);
    const double with = int8_head_error(model, trial, inputs, reference, threads);
    if (with >= error) {  // no help on top of the others: leave it in int8
      trial.fp32_layers.pop_back();
      continue;
    }
    error = with;
    choice.fp32_layers.push_back(s.layer);
    choice.error_after.push_back(error);
    std::fprintf(stderr, "fp32: layer %d -> head error %.4f\n", s.layer, error);
  }
  std::sort(choice.fp32_layers.begin(), choice.fp32_layers.end());
  return choice;
}

}  // namespace clouddetect
