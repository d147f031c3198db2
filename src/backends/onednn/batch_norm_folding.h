// Darknet's batch norm folded into a [convolutional] layer's weights and bias (inference:
// y = gamma * (conv(x) - mean) / sqrt(variance + eps) + beta), so the convolution alone computes it.
#pragma once

#include <vector>

#include "darknet/model.h"

namespace clouddetect::onednn {

// Darknet's batch norm epsilon (normalize_cpu: sqrt(variance + .000001f)).
constexpr float kBatchNormEpsilon = 0.000001f;

// Plain (oihw / goihw) weights scaled by gamma / sqrt(var + eps); biases - gamma * mean / sqrt(...).
std::vector<float> fold_batch_norm_weights(const darknet::Layer& layer);
std::vector<float> fold_batch_norm_bias(const darknet::Layer& layer);

}  // namespace clouddetect::onednn
