// int8 with some convolutions kept in fp32 (mixed precision), chosen by `clouddetect calibrate`:
// each convolution's sensitivity is measured by keeping it alone in fp32 and measuring how much
// the raw heads' error against fp32 falls; the most sensitive layers are then kept in fp32, one at
// a time, until the heads' error on the calibration images is within the stated budget.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/activation_ranges.h"
#include "backends/backend.h"

namespace clouddetect {

// Mean relative L2 error of the int8 heads (with ranges.fp32_layers in fp32) against `reference`
// (the fp32 heads of the same inputs).
double int8_head_error(const std::shared_ptr<const darknet::Model>& model, const ActivationRanges& ranges,
                       const std::vector<Tensor>& inputs, const std::vector<std::vector<Tensor>>& reference,
                       int threads);

struct LayerSensitivity {
  int layer = 0;
  double head_error = 0;  // with this layer alone in fp32
  double macs_share = 0;  // its share of the network's multiply-adds
};

struct MixedPrecisionChoice {
  double all_int8_error = 0;
  std::vector<LayerSensitivity> layers;  // every quantisable convolution, most sensitive first
  std::vector<int> fp32_layers;          // chosen
  std::vector<double> error_after;       // head error after each chosen layer was added
};

// Ranks the convolutions and keeps the most sensitive ones in fp32 until the head error on
// `inputs` is at most `head_error_budget` or `max_layers` are kept. Prints the per-layer table.
MixedPrecisionChoice choose_fp32_layers(const std::shared_ptr<const darknet::Model>& model,
                                        const ActivationRanges& ranges, const std::vector<Tensor>& inputs,
                                        double head_error_budget, int max_layers, int threads);

}  // namespace clouddetect
