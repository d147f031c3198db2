// [convolutional] in int8 on random data against the darknet-style loop (layer_test_support.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "backends/onednn/layer_test_support.h"
#include "backends/onednn/layers/convolutional.h"

namespace clouddetect::onednn::layer_test {
namespace {

// The same convolutions on quantised inputs (s8, a different scale per channel) against the loop
// run on exactly the values the quantised input stands for. What is left is the int8 error: weights
// rounded to 8 bits per filter and, for an s8 output, its rounding. Budget: max |error| <= 2% of
// max |reference|, against ~20-50% for a wrong scale, bias or channel order.

// Channel c of `in` spans about (c % 5 + 1) / 5 of [-1, 1]: per-channel scales genuinely differ.
std::vector<float> quantised_input(const Shape& s, std::vector<float>& scales, unsigned seed) {
  std::vector<float> in = random_vector(static_cast<std::size_t>(s.size()), seed);
  const std::size_t plane = static_cast<std::size_t>(s.h * s.w);
  scales.assign(static_cast<std::size_t>(s.c), 0.0f);
  for (std::size_t c = 0; c < scales.size(); ++c) {
    float largest = 0;
    for (std::size_t i = 0; i < plane; ++i)
      largest = std::max(largest, std::abs(in[c * plane + i] *= (c % 5 + 1) / 5.0f));
    scales[c] = largest / 127.0f;
    for (std::size_t i = 0; i < plane; ++i)
      in[c * plane + i] = std::nearbyint(in[c * plane + i] / scales[c]) * scales[c];
  }
  return in;
}

std::vector<float> inverse(const std::vector<float>& scales) {
  std::vector<float> result;
  for (float scale : scales) result.push_back(1.0f / scale);
  return result;
}

void expect_within_quantisation(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  float largest = 0, worst = 0;
  for (float x : expected) largest = std::max(largest, std::abs(x));
  for (std::size_t i = 0; i < actual.size(); ++i) worst = std::max(worst, std::abs(actual[i] - expected[i]));
  EXPECT_LE(worst, 0.02f * largest) << "largest |reference| " << largest;
  EXPECT_GT(largest, 0.1f);  // not a degenerate all-zero case
}

// Per output channel: absmax / 127 of `values` ([c][h*w]).
std::vector<float> channel_scales(const std::vector<float>& values, const Shape& s) {
  std::vector<float> scales(static_cast<std::size_t>(s.c));
  const std::size_t plane = static_cast<std::size_t>(s.h * s.w);
  for (std::size_t c = 0; c < scales.size(); ++c) {
    float largest = 0;
    for (std::size_t i = 0; i < plane; ++i) largest = std::max(largest, std::abs(values[c * plane + i]));
    scales[c] = largest > 0 ? largest / 127.0f : 1.0f;
  }
  return scales;
}

memory::desc nhwc(const Shape& s, memory::data_type type) { return memory::desc({1, s.c, s.h, s.w}, type, tag::nhwc); }

class ConvolutionalInt8Test : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvolutionalInt8Test, MatchesReferenceLoopWithinQuantisation) {
  const Layer layer = make_conv_layer(GetParam(), 7);
  std::vector<float> src_scales;
  const std::vector<float> in = quantised_input(layer.input, src_scales, 11);
  const std::vector<float> expected = conv_reference(layer, in);
  PreparedConvolution prepared(layer);
  for (memory::data_type dst_type : {memory::data_type::f32, memory::data_type::s8}) {
    SCOPED_TRACE(dst_type == memory::data_type::f32 ? "f32 output" : "s8 output");
    Harness harness;
    Plan& plan = harness.plan();
    memory src = plan.convert(harness.input(in, layer.input, tag::nchw), nhwc(layer.input, memory::data_type::s8),
                              inverse(src_scales));
    Int8Scales scales;
    scales.src = src_scales;
    scales.dst_type = dst_type;
    if (dst_type == memory::data_type::s8) scales.dst = channel_scales(expected, layer.output);
    memory out = make_convolutional_int8(plan, prepared, src, scales);
    memory real = plan.convert(out, nhwc(layer.output, memory::data_type::f32), scales.dst);
    expect_within_quantisation(harness.run(real), expected);
  }
}

// Asymmetric u8 (as after leaky): channel c's values (q - zero_point) * scale for random codes q,
// the scale as in quantised_input().
std::vector<float> asymmetric_input(const Shape& s, std::vector<float>& scales, int zero_point, unsigned seed) {
  std::vector<float> in = random_vector(static_cast<std::size_t>(s.size()), seed, 0.0f, 1.0f);
  const std::size_t plane = static_cast<std::size_t>(s.h * s.w);
  scales.assign(static_cast<std::size_t>(s.c), 0.0f);
  for (std::size_t c = 0; c < scales.size(); ++c) {
    scales[c] = (c % 5 + 1) / 5.0f / 127.0f;
    for (std::size_t i = 0; i < plane; ++i) {
      float& x = in[c * plane + i];
      x = (std::nearbyint(x * 255.0f) - static_cast<float>(zero_point)) * scales[c];
    }
  }
  return in;
}

// Per output channel, the step that fits both sides of `values` into u8 around `zero_point`.
std::vector<float> asymmetric_scales(const std::vector<float>& values, const Shape& s, int zero_point) {
  std::vector<float> scales(static_cast<std::size_t>(s.c));
  const std::size_t plane = static_cast<std::size_t>(s.h * s.w);
  for (std::size_t c = 0; c < scales.size(); ++c) {
    float step = 0;
    for (std::size_t i = 0; i < plane; ++i) {
      const float x = values[c * plane + i];
      step = std::max(step, x < 0 ? -x / static_cast<float>(zero_point) : x / static_cast<float>(255 - zero_point));
    }
    scales[c] = step > 0 ? step : 1.0f;
  }
  return scales;
}

// u8 input and output with zero points (oneDNN compensates the input's in the weights).
TEST_P(ConvolutionalInt8Test, WithZeroPointsMatchesReferenceLoopWithinQuantisation) {
  const Layer layer = make_conv_layer(GetParam(), 7);
  constexpr int kSrcZeroPoint = 40;
  // After leaky a tenth of the codes for the negative side; a linear output is about symmetric.
  const int dst_zero_point = GetParam().activation == Activation::kLinear ? 128 : 23;
  std::vector<float> src_scales;
  const std::vector<float> in = asymmetric_input(layer.input, src_scales, kSrcZeroPoint, 11);
  const std::vector<float> expected = conv_reference(layer, in);
  PreparedConvolution prepared(layer);
  for (memory::data_type dst_type : {memory::data_type::f32, memory::data_type::u8}) {
    SCOPED_TRACE(dst_type == memory::data_type::f32 ? "f32 output" : "u8 output");
    Harness harness;
    Plan& plan = harness.plan();
    memory src = plan.convert(harness.input(in, layer.input, tag::nchw), nhwc(layer.input, memory::data_type::u8),
                              inverse(src_scales), 0, kSrcZeroPoint);
    Int8Scales scales;
    scales.src = src_scales;
    scales.src_zero_point = kSrcZeroPoint;
    scales.dst_type = dst_type;
    if (dst_type == memory::data_type::u8) {
      scales.dst = asymmetric_scales(expected, layer.output, dst_zero_point);
      scales.dst_zero_point = dst_zero_point;
    }
    memory out = make_convolutional_int8(plan, prepared, src, scales);
    memory real = plan.convert(out, nhwc(layer.output, memory::data_type::f32), scales.dst, scales.dst_zero_point);
    expect_within_quantisation(harness.run(real), expected);
  }
}

// Per output channel, the mean of actual - expected.
std::vector<double> channel_mean_error(const std::vector<float>& actual, const std::vector<float>& expected,
                                       const Shape& s) {
  const std::size_t plane = static_cast<std::size_t>(s.h * s.w);
  std::vector<double> error(static_cast<std::size_t>(s.c), 0.0);
  for (std::size_t i = 0; i < actual.size(); ++i) error[i / plane] += (actual[i] - expected[i]) / plane;
  return error;
}

// An input far from zero on average (u8 around a low zero point) shifts each output by its
// weights' rounding error times that mean; given the input's means, the bias takes it off.
TEST_P(ConvolutionalInt8Test, BiasCorrectionTakesOffTheAverageRoundingError) {
  const Layer layer = make_conv_layer(GetParam(), 7);
  constexpr int kZeroPoint = 10;
  std::vector<float> src_scales;
  const std::vector<float> in = asymmetric_input(layer.input, src_scales, kZeroPoint, 11);
  const std::vector<float> expected = conv_reference(layer, in);
  const std::size_t plane = static_cast<std::size_t>(layer.input.h * layer.input.w);
  std::vector<float> means(static_cast<std::size_t>(layer.input.c), 0.0f);
  for (std::size_t i = 0; i < in.size(); ++i) means[i / plane] += in[i] / static_cast<float>(plane);
  PreparedConvolution prepared(layer);
  double total[2] = {0, 0};
  for (bool corrected : {false, true}) {
    Harness harness;
    Plan& plan = harness.plan();
    Int8Scales scales;
    scales.src = src_scales;
    scales.src_zero_point = kZeroPoint;
    scales.dst_type = memory::data_type::f32;
    if (corrected) scales.src_mean = means;
    memory src = plan.convert(harness.input(in, layer.input, tag::nchw), nhwc(layer.input, memory::data_type::u8),
                              inverse(src_scales), 0, kZeroPoint);
    const std::vector<float> actual = harness.run(make_convolutional_int8(plan, prepared, src, scales));
    for (double e : channel_mean_error(actual, expected, layer.output)) total[corrected] += std::abs(e);
  }
  // Padding sees zeros, not the mean: the border keeps a little of the shift.
  EXPECT_LT(total[1], 0.5 * total[0]) << "summed |mean error| without correction " << total[0];
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, ConvolutionalInt8Test,
    ::testing::Values(ConvCase{3, 33, 31, 16, 3, 1, 1, 1, true, Activation::kLeaky},      // first layer
                      ConvCase{3, 32, 32, 16, 3, 2, 1, 1, true, Activation::kLeaky},      // stride 2
                      ConvCase{16, 20, 20, 32, 3, 1, 1, 1, true, Activation::kLeaky},     // 3x3
                      ConvCase{48, 10, 10, 16, 1, 1, 0, 1, true, Activation::kLinear},    // pointwise
                      ConvCase{64, 12, 12, 64, 3, 1, 1, 64, true, Activation::kLeaky},    // depthwise
                      ConvCase{48, 13, 13, 48, 3, 2, 1, 48, true, Activation::kLeaky},    // depthwise s2
                      ConvCase{96, 10, 10, 96, 5, 1, 1, 96, true, Activation::kLeaky},    // depthwise 5x5
                      ConvCase{16, 9, 9, 32, 3, 1, 1, 4, true, Activation::kRelu},        // grouped
                      ConvCase{24, 7, 7, 255, 1, 1, 1, 1, false, Activation::kLinear}));  // head

// The network input is u8 (pixel k at scale 1/255). Without VNNI (the _avx2 ctest), oneDNN adds
// pairs of u8 x s8 products in saturating 16 bits, so bright pixels would clip unless the weights
// keep 7 bits; with 8-bit weights this case is off by 35% of its largest value there.
TEST(ConvolutionalInt8Test, BrightU8InputDoesNotSaturate) {
  const Layer layer = make_conv_layer(ConvCase{3, 33, 31, 16, 3, 1, 1, 1, true, Activation::kLeaky}, 7);
  std::vector<float> in = random_vector(static_cast<std::size_t>(layer.input.size()), 12, 0.6f, 1.0f);
  for (float& x : in) x = std::nearbyint(x * 255.0f) / 255.0f;
  const std::vector<float> expected = conv_reference(layer, in);
  PreparedConvolution prepared(layer);
  Harness harness;
  Plan& plan = harness.plan();
  memory src =
      plan.convert(harness.input(in, layer.input, tag::nchw), nhwc(layer.input, memory::data_type::u8), {255.0f});
  Int8Scales scales;
  scales.src = {1.0f / 255.0f};
  scales.dst_type = memory::data_type::f32;
  expect_within_quantisation(harness.run(make_convolutional_int8(plan, prepared, src, scales)), expected);
}

// A fused [shortcut] in int8: the convolution adds into `from`'s s8 storage, at its scales.
TEST(ConvolutionalInt8Test, FusedShortcutMatchesReferenceLoop) {
  for (Activation after : {Activation::kLinear, Activation::kLeaky}) {
    const Layer layer = make_conv_layer(ConvCase{16, 9, 11, 24, 1, 1, 0, 1, true, Activation::kLeaky}, 9);
    std::vector<float> src_scales, from_scales;
    const std::vector<float> in = quantised_input(layer.input, src_scales, 12);
    std::vector<float> sum = conv_reference(layer, in);
    const std::vector<float> from = random_vector(sum.size(), 13);
    for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += from[i];
    // The scales cover both `from` and the result, as calibration makes them.
    std::vector<float> scales_of_both = channel_scales(sum, layer.output);
    const std::vector<float> from_only = channel_scales(from, layer.output);
    for (std::size_t c = 0; c < scales_of_both.size(); ++c)
      scales_of_both[c] = std::max(scales_of_both[c], from_only[c]);
    std::vector<float> from_quantised = from;
    const std::size_t plane = static_cast<std::size_t>(layer.output.h * layer.output.w);
    for (std::size_t i = 0; i < from_quantised.size(); ++i) {
      from_quantised[i] = std::nearbyint(from[i] / scales_of_both[i / plane]) * scales_of_both[i / plane];
    }
    std::vector<float> expected = conv_reference(layer, in);
    for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = activate(expected[i] + from_quantised[i], after);

    PreparedConvolution prepared(layer);
    Harness harness;
    Plan& plan = harness.plan();
    memory src = plan.convert(harness.input(in, layer.input, tag::nchw), nhwc(layer.input, memory::data_type::s8),
                              inverse(src_scales));
    memory accumulate = plan.convert(harness.input(from_quantised, layer.output, tag::nchw),
                                     nhwc(layer.output, memory::data_type::s8), inverse(scales_of_both));
    Int8Scales scales;
    scales.src = src_scales;
    scales.dst = scales_of_both;
    memory out = make_convolutional_int8(plan, prepared, src, scales, &accumulate, after);
    EXPECT_EQ(out.get(), accumulate.get());
    expect_within_quantisation(harness.run(plan.convert(out, nhwc(layer.output, memory::data_type::f32), scales.dst)),
                               expected);
  }
}

}  // namespace
}  // namespace clouddetect::onednn::layer_test
