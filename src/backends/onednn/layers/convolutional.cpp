#include "backends/onednn/layers/convolutional.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>

#include "backends/onednn/activation.h"
#include "backends/onednn/kernels/input_convolution.h"
#include "backends/onednn/kernels/lanes.h"
#include "backends/onednn/kernels/winograd.h"

namespace clouddetect::onednn {

using dnnl::memory;

memory::dims convolutional_weights_dims(const darknet::Layer& layer) {
  const auto& p = layer.convolutional;
  if (p.groups == 1) return {p.filters, layer.input.c, p.size, p.size};
  return {p.groups, p.filters / p.groups, layer.input.c / p.groups, p.size, p.size};
}

namespace {

// The convolution of `layer` from `src_md` to `dst_md`. Darknet pads `padding` on every side;
// oneDNN wants the right/bottom padding actually used.
dnnl::convolution_forward::desc convolution_desc(const darknet::Layer& layer, const memory::desc& src_md,
                                                 memory::data_type weights_type, const memory::desc& dst_md,
                                                 dnnl::algorithm algorithm = dnnl::algorithm::convolution_direct) {
  const auto& p = layer.convolutional;
  const memory::dim pad_b = std::max(0, (layer.output.h - 1) * p.stride + p.size - layer.input.h - p.padding);
  const memory::dim pad_r = std::max(0, (layer.output.w - 1) * p.stride + p.size - layer.input.w - p.padding);
  return dnnl::convolution_forward::desc(
      dnnl::prop_kind::forward_inference, algorithm, src_md, any_desc(convolutional_weights_dims(layer), weights_type),
      plain_desc({p.filters}), dst_md, {p.stride, p.stride}, {p.padding, p.padding}, {pad_b, pad_r});
}

// The activation, and with `accumulate` the fused shortcut: sum into dst, then its activation.
dnnl::post_ops convolution_post_ops(const darknet::Layer& layer, bool accumulate,
                                    darknet::Activation accumulate_activation) {
  dnnl::post_ops ops;
  append_activation(ops, layer.convolutional.activation);
  if (accumulate) {
    ops.append_sum(1.0f);
    append_activation(ops, accumulate_activation);
  }
  return ops;
}

// Appends the primitive of `pd` reading `src` (reordered if needed), writing `accumulate`, `into` or
// a new memory; returns the output.
memory append_convolution(Plan& plan, const dnnl::convolution_forward::primitive_desc& pd, const memory& src,
                          const memory& weights, const memory& bias, const memory* accumulate,
                          const memory* into = nullptr) {
  memory input = plan.reorder_to(src, pd.src_desc());
  memory dst = accumulate ? *accumulate : into ? *into : plan.new_memory(pd.dst_desc());
  if (dst.get_desc() != pd.dst_desc()) throw dnnl::error(dnnl_invalid_arguments, "convolution output layout mismatch");
  plan.add(dnnl::convolution_forward(pd),
           {{DNNL_ARG_SRC, input}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}},
           pd.scratchpad_desc());
  return dst;
}

// Winograd (oneDNN 2.6 has it with AVX-512 only) needs 2.25x fewer multiplies for a dense 3x3
// stride-1 convolution: faster from 32 input channels up, slower below (docs/PERFORMANCE.md,
// "Native engine choices"). Its kernels take no eltwise post-op, so the caller applies the
// activation as a separate in-place step. Its error on the heads stays below 1e-6 (parity_test).
constexpr int kWinogradMinInputChannels = 32;
constexpr const char* kWinograd4x3 = "wino_4x3";
constexpr int kWinograd4x3MinPixels = 26 * 26;
constexpr int kOwnWinogradMaxPixels = 26 * 26;
constexpr int kOwnWinogradAnyMapMinProductsPerValue = 40;
constexpr std::size_t kWinograd3x3MaxWeightBytes = 16 << 20;
constexpr int kStride2WinogradMinPixels = 26 * 26;
constexpr int kStride2Winograd4x3MinPixels = 52 * 52;
constexpr int kStride2WinogradMinChannels = 64;

std::optional<dnnl::convolution_forward::primitive_desc> winograd_convolution(Plan& plan, const darknet::Layer& layer,
                                                                              const memory::desc& src_md,
                                                                              const memory::desc& dst_md) {
  const auto& p = layer.convolutional;
  if (p.size != 3 || p.stride != 1 || p.groups != 1 || layer.input.c < kWinogradMinInputChannels) return std::nullopt;
  // The implementation iterator keeps a pointer to the op descriptor: it must outlive next_impl().
  const dnnl::convolution_forward::desc desc =
      convolution_desc(layer, src_md, memory::data_type::f32, dst_md, dnnl::algorithm::convolution_winograd);
  const dnnl::primitive_attr attr = Plan::attr();
  std::optional<dnnl::convolution_forward::primitive_desc> pd;
  try {
    pd.emplace(desc, attr, plan.engine());
  } catch (const dnnl::error& e) {
    if (e.status == dnnl_unimplemented) return std::nullopt;  // not on this CPU: direct it is
    throw;
  }
  // oneDNN offers F(2x2,3x3) first where both fit. F(4x4,3x3) does 1.8x fewer multiplies per output
  // but keeps 2.25x more transformed weights: faster from 26x26 maps up, slower at 13x13, where
  // streaming the weights dominates.
  if (layer.output.h * layer.output.w < kWinograd4x3MinPixels) return pd;
  const dnnl::convolution_forward::primitive_desc first = *pd;
  do {
    if (std::string(pd->impl_info_str()).find(kWinograd4x3) != std::string::npos) return pd;
  } while (pd->next_impl());
  return first;
}

// Stride 2 saves fewer multiplies (F(2x2) 1.44x, F(3x3) 1.65x, F(4x4) 1.78x; winograd_matrices.h),
// so our Winograd beats oneDNN's direct kernel only on maps from 26x26 with 64 channels or more
// (F(4x4) from 52x52, F(3x3) below). On 13x13 the transformed weights are read for too few tiles
// (docs/PERFORMANCE.md, "Stride-2 Winograd").
int stride2_tile(const darknet::Layer& layer) {
  const int pixels = layer.output.h * layer.output.w;
  if (pixels < kStride2WinogradMinPixels || layer.input.c < kStride2WinogradMinChannels) return 0;
  return pixels >= kStride2Winograd4x3MinPixels ? 4 : 3;
}

// Per value our transforms read or write (channels + filters per tile position), the products
// multiply-add channels x filters: the more, the less the transforms weigh.
int products_per_transformed_value(const darknet::Layer& layer) {
  return layer.input.c * layer.output.c / (layer.input.c + layer.output.c);
}

// The tile of our Winograd when it runs `layer` in `plan` (0 when not): where oneDNN has no Winograd
// (below AVX-512), and where it has, on maps up to 26x26 and on larger maps with 40 products per
// transformed value or more (64 -> 128 channels; 64 -> 64 is slower ours): there its kernels lose to
// our transforms around its batched GEMM (docs/PERFORMANCE.md, "AVX-512 transforms").
int own_winograd_tile(Plan& plan, const darknet::Layer& layer, const memory::desc& src_md, const memory::desc& dst_md) {
  // From 16 channels in nChw8c (AVX2) and where AVX-512 runs at half width; otherwise, in nChw16c,
  // oneDNN's direct kernel wins there (docs/PERFORMANCE.md, "AMD Zen 4").
  const int min_channels = channel_block(src_md) == 8 || avx512_half_width() ? 16 : kWinogradMinInputChannels;
  if (layer.input.c < min_channels || !own_winograd_fits(plan, layer)) return 0;
  if (layer.convolutional.stride == 2) return stride2_tile(layer);
  const bool ours_anyway = layer.output.h * layer.output.w <= kOwnWinogradMaxPixels ||
                           products_per_transformed_value(layer) >= kOwnWinogradAnyMapMinProductsPerValue;
  if (!ours_anyway && winograd_convolution(plan, layer, src_md, dst_md)) return 0;
  if (layer.output.h * layer.output.w >= kWinograd4x3MinPixels) return 4;
  // Below, F(3x3) (25 products per 9 outputs) beats F(2x2) (16 per 4) where our panels multiply,
  // and in nChw8c (AVX2) where oneDNN's matmul does unless its transformed weights are too many to
  // stream. With AVX-512 and the matmul it gains nothing.
  if (own_winograd_panels(plan, layer, 3)) return 3;
  if (channel_block(src_md) != 8) return 2;
  const std::size_t f3_weight_bytes = std::size_t{25} * layer.input.c * layer.output.c * sizeof(float);
  return f3_weight_bytes <= kWinograd3x3MaxWeightBytes ? 3 : 2;
}

}  // namespace

std::int64_t prepared_weight_values_bound(const darknet::Layer& layer, bool int8) {
  const auto& p = layer.convolutional;
  auto padded = [](std::int64_t channels) { return (channels + 15) / 16 * 16; };
  std::int64_t taps = static_cast<std::int64_t>(p.size) * p.size;
  if (!int8 && p.size == 3 && p.stride == 1 && p.groups == 1) {
    // F(4x4,3x3) holds 36 values per 9 weights; on smaller maps F(3x3,3x3) at most, 25.
    taps = layer.output.h * layer.output.w >= kWinograd4x3MinPixels ? 36 : 25;
  } else if (!int8 && p.size == 3 && p.stride == 2 && p.groups == 1) {
    // Stride 2 (stride2_tile): F(4x4) 81, F(3x3) 49, direct on small maps.
    const int pixels = layer.output.h * layer.output.w;
    taps = pixels >= kStride2Winograd4x3MinPixels ? 81 : pixels >= kStride2WinogradMinPixels ? 49 : taps;
  }
  return padded(p.filters) * padded(layer.input.c / p.groups) * taps;
}

memory make_convolutional(Plan& plan, const PreparedConvolution& prepared, const memory& src, const memory* accumulate,
                          darknet::Activation accumulate_activation, const memory* into) {
  const darknet::Layer& layer = prepared.layer();
  const memory::dims src_dims = {1, layer.input.c, layer.input.h, layer.input.w};
  const memory::dims dst_dims = {1, layer.output.c, layer.output.h, layer.output.w};
  // Blocked activations end to end; a first layer with few channels reads the plain input
  // directly (oneDNN has kernels for an nchw source with a blocked destination).
  const memory::desc src_md = layer.input.c < 8 ? plain_desc(src_dims) : plan.activation_desc(src_dims);
  const memory::desc dst_md = plan.activation_desc(dst_dims);
  if (const int tile = own_winograd_tile(plan, layer, src_md, dst_md)) {
    if (accumulate) return make_own_winograd(plan, prepared, src, tile, accumulate, false, &accumulate_activation);
    return make_own_winograd(plan, prepared, src, tile, into);
  }
  std::optional<dnnl::convolution_forward::primitive_desc> winograd =
      accumulate ? std::nullopt : winograd_convolution(plan, layer, src_md, dst_md);
  dnnl::primitive_attr attr = Plan::attr();
  attr.set_post_ops(convolution_post_ops(layer, accumulate != nullptr, accumulate_activation));
  const dnnl::convolution_forward::primitive_desc pd =
      winograd ? *winograd
               : dnnl::convolution_forward::primitive_desc(
                     convolution_desc(layer, src_md, memory::data_type::f32, dst_md), attr, plan.engine());

  std::shared_ptr<const float> weights = prepared.weights(pd.weights_desc(), plan.engine(), plan.stream());
  plan.keep(weights);
  memory weights_memory(pd.weights_desc(), plan.engine(), const_cast<float*>(weights.get()));
  memory bias_memory(pd.bias_desc(), plan.engine(), const_cast<float*>(prepared.bias().data()));
  memory dst = append_convolution(plan, pd, src, weights_memory, bias_memory, accumulate, into);
  if (winograd) append_activation_in_place(plan, layer.convolutional.activation, dst);
  return dst;
}

bool fused_shortcut_fits(Plan& plan, const darknet::Layer& layer, darknet::Activation accumulate_activation,
                         bool int8) {
  const memory::dims src_dims = {1, layer.input.c, layer.input.h, layer.input.w};
  const memory::dims dst_dims = {1, layer.output.c, layer.output.h, layer.output.w};
  if (!int8 && own_winograd_tile(plan, layer, plan.activation_desc(src_dims), plan.activation_desc(dst_dims))) {
    return true;  // our Winograd adds it in its output transform
  }
  dnnl::primitive_attr attr = Plan::attr();
  attr.set_post_ops(convolution_post_ops(layer, true, accumulate_activation));
  memory::desc src_md, dst_md;
  if (int8) {
    src_md = memory::desc(src_dims, memory::data_type::s8, memory::format_tag::nhwc);
    dst_md = memory::desc(dst_dims, memory::data_type::s8, memory::format_tag::nhwc);
    attr.set_output_scales(1 << 1, std::vector<float>(static_cast<std::size_t>(layer.convolutional.filters), 1.0f));
  } else {
    src_md = layer.input.c < 8 ? plain_desc(src_dims) : plan.activation_desc(src_dims);
    dst_md = plan.activation_desc(dst_dims);
  }
  const auto weights_type = int8 ? memory::data_type::s8 : memory::data_type::f32;
  const dnnl::convolution_forward::primitive_desc pd(convolution_desc(layer, src_md, weights_type, dst_md), attr,
                                                     plan.engine());
  return std::string(pd.impl_info_str()).rfind("ref", 0) != 0;
}

std::optional<memory> make_convolutional_pooled(Plan& plan, const PreparedConvolution& prepared, const memory& src) {
  const darknet::Layer& layer = prepared.layer();
  if (layer.output.h % 2 != 0 || layer.output.w % 2 != 0) return std::nullopt;
  if (input_convolution_pooled_fits(plan, layer)) return make_input_convolution_pooled(plan, prepared, src);
  const memory::desc src_md = plan.activation_desc({1, layer.input.c, layer.input.h, layer.input.w});
  const memory::desc dst_md = plan.activation_desc({1, layer.output.c, layer.output.h, layer.output.w});
  const int tile = own_winograd_tile(plan, layer, src_md, dst_md);
  if (tile == 0) return std::nullopt;
  return make_own_winograd(plan, prepared, src, tile, nullptr, /*pool=*/true);
}

namespace {

// Without VNNI, oneDNN's int8 kernels multiply with vpmaddubsw, which adds each pair of u8 x s8
// products in saturating 16 bits: 2 x 255 x 127 overflows. oneDNN halves the weights itself for
// an s8 input (which it shifts to u8), not for a u8 one (the network input): there the weights
// keep 7 bits, 2 x 255 x 63 < 32767 (the mAP this keeps: docs/PERFORMANCE.md).
constexpr int kMaxWeightWithoutVnni = 63;

bool has_vnni() { return cpu_has(dnnl_cpu_isa_avx512_core_vnni) || cpu_has(dnnl_cpu_isa_avx2_vnni); }

// oneDNN subtracts the src zero point inside the kernel (the weights carry its compensation) and
// adds the dst one after the post-ops.
void set_zero_points(dnnl::primitive_attr& attr, const Int8Scales& scales) {
  if (scales.src_zero_point != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {scales.src_zero_point});
  if (scales.dst_zero_point != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {scales.dst_zero_point});
}

// Rounding the weights shifts a filter's output by its rounding error times its input's mean: the
// bias takes it off, so the output stays right on average.
void correct_bias(std::vector<float>& bias, const PreparedConvolution::Int8Weights& weights, const Int8Scales& scales,
                  const darknet::Layer& layer) {
  const std::size_t channels = static_cast<std::size_t>(layer.input.c);
  const std::size_t groups = static_cast<std::size_t>(layer.convolutional.groups);
  const std::size_t group_channels = channels / groups;
  const std::size_t filters_per_group = bias.size() / groups;
  if (scales.src_mean.size() != channels) throw dnnl::error(dnnl_invalid_arguments, "int8: one mean per input channel");
  for (std::size_t f = 0; f < bias.size(); ++f) {
    for (std::size_t c = 0; c < group_channels; ++c) {
      const std::size_t channel = f / filters_per_group * group_channels + c;
      const float scale = scales.src.size() == 1 ? scales.src[0] : scales.src[channel];
      bias[f] -= weights.rounding_error[f * group_channels + c] * scales.src_mean[channel] / scale;
    }
  }
}

}  // namespace

memory make_convolutional_int8(Plan& plan, const PreparedConvolution& prepared, const memory& src,
                               const Int8Scales& scales, const memory* accumulate,
                               darknet::Activation accumulate_activation) {
  const darknet::Layer& layer = prepared.layer();
  const auto& p = layer.convolutional;
  if (!scale_invariant(p.activation) || (accumulate && !scale_invariant(accumulate_activation))) {
    throw dnnl::error(dnnl_invalid_arguments, "int8 convolution needs a linear, relu or leaky activation");
  }
  const memory::dims src_dims = {1, layer.input.c, layer.input.h, layer.input.w};
  const memory::dims dst_dims = {1, layer.output.c, layer.output.h, layer.output.w};
  const memory::desc src_md(src_dims, src.get_desc().data_type(), memory::format_tag::nhwc);
  const memory::desc dst_md(dst_dims, scales.dst_type, memory::format_tag::nhwc);
  const dnnl::convolution_forward::desc desc = convolution_desc(layer, src_md, memory::data_type::s8, dst_md);

  if (scales.dst.size() != 1 && scales.dst.size() != static_cast<std::size_t>(p.filters)) {
    throw dnnl::error(dnnl_invalid_arguments, "int8 convolution: one dst scale, or one per filter");
  }
  // Weights are prepared before the primitive, whose output scales depend on their quantisation.
  // The weights layout does not depend on the scale values: ask a descriptor with placeholders.
  dnnl::primitive_attr probe = Plan::attr();
  probe.set_output_scales(1 << 1, std::vector<float>(static_cast<std::size_t>(p.filters), 1.0f));
  set_zero_points(probe, scales);
  const memory::desc weights_md = dnnl::convolution_forward::primitive_desc(desc, probe, plan.engine()).weights_desc();
  const PreparedConvolution::Int8Weights weights = prepared.int8_weights(
      weights_md, scales.src, plan.engine(), plan.stream(),
      src.get_desc().data_type() == memory::data_type::u8 && !has_vnni() ? kMaxWeightWithoutVnni : 127);

  // oneDNN 2.x: dst = post_ops(output_scale * (sum(src * weights) + bias)), so the bias is given in
  // accumulator units and the output scale takes the accumulator to dst units.
  auto bias = std::make_shared<std::vector<float>>(prepared.bias());
  if (!scales.src_mean.empty()) correct_bias(*bias, weights, scales, layer);
  std::vector<float> output_scales(weights.unit.size());
  for (std::size_t f = 0; f < output_scales.size(); ++f) {
    (*bias)[f] /= weights.unit[f];
    output_scales[f] = weights.unit[f] / (scales.dst.size() == 1 ? scales.dst[0] : scales.dst[f]);
  }
  dnnl::primitive_attr attr = Plan::attr();
  attr.set_output_scales(1 << 1, output_scales);
  set_zero_points(attr, scales);
  attr.set_post_ops(convolution_post_ops(layer, accumulate != nullptr, accumulate_activation));
  dnnl::convolution_forward::primitive_desc pd(desc, attr, plan.engine());

  if (pd.weights_desc() != weights_md) throw dnnl::error(dnnl_invalid_arguments, "int8 weights layout changed");
  plan.keep(weights.data);
  plan.keep(bias);
  memory weights_memory(pd.weights_desc(), plan.engine(), const_cast<void*>(weights.data.get()));
  memory bias_memory(pd.bias_desc(), plan.engine(), bias->data());
  return append_convolution(plan, pd, src, weights_memory, bias_memory, accumulate);
}

}  // namespace clouddetect::onednn
