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

// {filters, c, size, size}, or {groups, filters/groups, c/groups, size, size} when grouped.
dnnl::memory::dims convolutional_weights_dims(const darknet::Layer& layer);

// At most the weight values make_convolutional (fp32) or make_convolutional_int8 keeps for `layer`:
// channels padded to blocks of 16, a dense 3x3 in the largest Winograd form it may choose for the
// layer's map. fp32 values even for int8, where a layer may stay in fp32.
std::int64_t prepared_weight_values_bound(const darknet::Layer& layer, bool int8);

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

// Whether a [shortcut] after `layer` can run inside it (post-ops: its activation, sum,
// `accumulate_activation`), fp32 or (`int8`) s8 nhwc. Always in fp32 where our Winograd runs the
// layer: its output transform adds it. Otherwise false where oneDNN has only its reference kernel
// for it: oneDNN 2.6 has no fp32 JIT kernel for an eltwise before the sum (yolov3's leaky residual
// convolutions), and its reference convolution is orders of magnitude slower than a separate addition.
bool fused_shortcut_fits(Plan& plan, const darknet::Layer& layer, darknet::Activation accumulate_activation, bool int8);

// The convolution and the 2x2 stride-2 max pool after it as one step, when its map is even and it
// runs as our Winograd (kernels/winograd.h) or as our first-layer pass (kernels/input_convolution.h):
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
  int src_zero_point = 0;  // u8 src and dst: q stands for (q - zero point) * scale
  int dst_zero_point = 0;
  // Per input channel, its mean real value on the calibration images (empty: unknown). The bias
  // then takes off what rounding the weights adds on average (bias correction).
  std::vector<float> src_mean;
  dnnl::memory::data_type dst_type = dnnl::memory::data_type::s8;
};
dnnl::memory make_convolutional_int8(Plan& plan, const PreparedConvolution& prepared, const dnnl::memory& src,
                                     const Int8Scales& scales, const dnnl::memory* accumulate = nullptr,
                                     darknet::Activation accumulate_activation = darknet::Activation::kLinear);

}  // namespace clouddetect::onednn
