// [convolutional]: a (grouped, depthwise) convolution with darknet's batch norm folded into the
// weights and bias and the activation fused as an eltwise post-op.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>
#include <optional>
#include <vector>

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
//
// With `into` (a memory in the plan's activation layout, e.g. a view of a route's output) the result
// is written there instead of a new memory.
dnnl::memory make_convolutional(Plan& plan, const PreparedConvolution& prepared, const dnnl::memory& src,
                                const dnnl::memory* accumulate = nullptr,
                                darknet::Activation accumulate_activation = darknet::Activation::kLinear,
                                const dnnl::memory* into = nullptr);

// The convolution and the 2x2 stride-2 max pool after it as one step, when its map is even and it
// runs as our Winograd (layers/winograd.h) or as our first-layer pass (layers/input_convolution.h):
// returns the pooled output (the plan's activation layout), the convolution's own output never
// being stored; nullopt otherwise. Only for a convolution whose output nothing else reads.
std::optional<dnnl::memory> make_convolutional_pooled(Plan& plan, const PreparedConvolution& prepared,
                                                      const dnnl::memory& src);

// The int8 form. A quantised tensor q stands for the real values q * scale, with one scale per
// tensor or one per channel.
// `src` is s8 (u8 for the network input) in nhwc holding real / src; the src scales are folded into
// the weights, which are then quantised per filter (PreparedConvolution::int8_weights). The output
// is nhwc: s8 holding real / dst, or f32 real values when `dst_type` is f32 (then dst must be
// {1}). Every activation must be linear,
// relu or leaky: they commute with a positive scale, so they run on scaled values. With
// `accumulate` (s8, nhwc, holding values at the dst scales) the result is added into it as above.
struct Int8Scales {
  std::vector<float> src{1.0f};
  std::vector<float> dst{1.0f};
  dnnl::memory::data_type dst_type = dnnl::memory::data_type::s8;
};
dnnl::memory make_convolutional_int8(Plan& plan, const PreparedConvolution& prepared, const dnnl::memory& src,
                                     const Int8Scales& scales, const dnnl::memory* accumulate = nullptr,
                                     darknet::Activation accumulate_activation = darknet::Activation::kLinear);

// True when `activation` commutes with positive scaling (may follow an int8 convolution).
bool scale_invariant(darknet::Activation activation);

}  // namespace clouddetect::onednn
