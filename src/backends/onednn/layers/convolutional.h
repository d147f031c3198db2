// [convolutional]: a (grouped, depthwise) convolution with darknet's batch norm folded into the
// weights and bias and the activation fused as an eltwise post-op.
#pragma once

#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "backends/onednn/plan.h"
#include "backends/onednn/prepared_model.h"
#include "darknet/model.h"

namespace clouddetect::onednn {

// Darknet's batch norm epsilon (normalize_cpu: sqrt(variance + .000001f)).
constexpr float kBatchNormEpsilon = 0.000001f;

// {filters, c, size, size}, or {groups, filters/groups, c/groups, size, size} when grouped.
dnnl::memory::dims convolutional_weights_dims(const darknet::Layer& layer);
// Plain (oihw / goihw) weights scaled by gamma / sqrt(var + eps); biases - gamma * mean / sqrt(...).
std::vector<float> fold_batch_norm_weights(const darknet::Layer& layer);
std::vector<float> fold_batch_norm_bias(const darknet::Layer& layer);

// Appends the convolution to `plan`; `src` may be in any layout (reordered if the primitive wants
// another). Returns the output in the plan's blocked activation layout.
//
// With `accumulate` (a fused [shortcut] that follows this layer), the activated result is added in
// place to `accumulate`, which must be in the plan's activation layout and dead after this step,
// then `accumulate_activation` is applied (post-ops: eltwise, sum, eltwise); returns `accumulate`.
dnnl::memory make_convolutional(Plan& plan, const PreparedConvolution& prepared, const dnnl::memory& src,
                                const dnnl::memory* accumulate = nullptr,
                                darknet::Activation accumulate_activation = darknet::Activation::kLinear);

}  // namespace clouddetect::onednn
