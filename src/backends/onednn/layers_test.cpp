// Each native layer on random data against a plain darknet-style loop.
// Tolerance: max |native - reference| / max(1, |reference|) <= 1e-4 per element (fp32 sums of at
// most a few hundred products differ from the loop's order by ~1e-6).
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <random>

#include "backends/onednn/kernels/input_convolution.h"
#include "backends/onednn/kernels/lanes.h"
#include "backends/onednn/kernels/winograd.h"
#include "backends/onednn/layers/convolutional.h"
#include "backends/onednn/layers/maxpool.h"
#include "backends/onednn/layers/route.h"
#include "backends/onednn/layers/shortcut.h"
#include "backends/onednn/layers/upsample.h"
#include "backends/onednn/onednn_backend.h"
#include "core/error.h"

namespace clouddetect::onednn {
namespace {

using darknet::Activation;
using darknet::Layer;
using darknet::Shape;
using dnnl::memory;
using tag = memory::format_tag;

constexpr float kTolerance = 1e-4f;

std::vector<float> random_vector(std::size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

float activate(float x, Activation a) {
  switch (a) {
    case Activation::kLinear:
      return x;
    case Activation::kLeaky:
      return x > 0 ? x : 0.1f * x;
    case Activation::kRelu:
      return x > 0 ? x : 0;
    case Activation::kLogistic:
      return 1.0f / (1.0f + std::exp(-x));
    case Activation::kMish:
      return x * std::tanh(std::log1p(std::exp(x)));
  }
  return x;
}

void expect_close(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  float worst = 0;
  std::size_t worst_at = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    float err = std::abs(actual[i] - expected[i]) / std::max(1.0f, std::abs(expected[i]));
    if (err > worst) worst = err, worst_at = i;
  }
  EXPECT_LE(worst, kTolerance) << "at " << worst_at << ": " << actual[worst_at] << " vs " << expected[worst_at];
}

// Feeds plain NCHW data in a given layout to one layer and reads its output back as NCHW.
class Harness {
 public:
  Harness() : plan_(dnnl::engine(dnnl::engine::kind::cpu, 0)) {}
  explicit Harness(Plan plan) : plan_(std::move(plan)) {}
  Plan& plan() { return plan_; }

  memory input(const std::vector<float>& data, const Shape& s, tag layout) {
    return input(data, s, memory::desc({1, s.c, s.h, s.w}, memory::data_type::f32, layout));
  }
  memory input(const std::vector<float>& data, const Shape& s, const memory::desc& layout) {
    inputs_.push_back(data);
    memory user(plain_desc({1, s.c, s.h, s.w}), plan_.engine(), inputs_.back().data());
    return plan_.reorder_to(user, layout);
  }

  std::vector<float> run(const memory& out) {
    memory::dims dims = out.get_desc().dims();
    std::vector<float> result(static_cast<std::size_t>(dims[0] * dims[1] * dims[2] * dims[3]));
    memory user(plain_desc(dims), plan_.engine(), result.data());
    memory plain = plan_.reorder_to(out, user.get_desc());
    dnnl::reorder::primitive_desc pd(plan_.engine(), plain.get_desc(), plan_.engine(), user.get_desc());
    plan_.add(dnnl::reorder(pd), {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, user}}, pd.scratchpad_desc());
    plan_.finalize();
    plan_.execute();
    return result;
  }

 private:
  Plan plan_;
  std::vector<std::vector<float>> inputs_;
};

// ---- [convolutional] ----

struct ConvCase {
  int c, h, w, filters, size, stride, pad, groups;
  bool batch_normalize;
  Activation activation;
};

Layer make_conv_layer(const ConvCase& k, unsigned seed) {
  Layer layer;
  layer.type = darknet::LayerType::kConvolutional;
  auto& p = layer.convolutional;
  p = {k.filters, k.size, k.stride, k.pad ? k.size / 2 : 0, k.groups, k.batch_normalize, k.activation};
  layer.input = {k.c, k.h, k.w};
  layer.output = {k.filters, (k.h + 2 * p.padding - k.size) / k.stride + 1,
                  (k.w + 2 * p.padding - k.size) / k.stride + 1};
  const std::size_t n = static_cast<std::size_t>(k.filters);
  const float bound = std::sqrt(3.0f / static_cast<float>(k.c / k.groups * k.size * k.size));
  layer.weights.weights = random_vector(n * (k.c / k.groups) * k.size * k.size, seed, -bound, bound);
  layer.weights.biases = random_vector(n, seed + 1);
  if (k.batch_normalize) {
    layer.weights.scales = random_vector(n, seed + 2, 0.5f, 1.5f);
    layer.weights.rolling_mean = random_vector(n, seed + 3, -0.2f, 0.2f);
    layer.weights.rolling_variance = random_vector(n, seed + 4, 0.01f, 2.0f);
  }
  return layer;
}

// darknet forward_convolutional_layer + normalize/scale/add_bias + activate, unfolded.
std::vector<float> conv_reference(const Layer& layer, const std::vector<float>& in) {
  const auto& p = layer.convolutional;
  const auto& wt = layer.weights;
  const Shape i = layer.input, o = layer.output;
  const int per_group_in = i.c / p.groups, per_group_out = p.filters / p.groups;
  std::vector<float> out(static_cast<std::size_t>(o.size()));
  for (int f = 0; f < p.filters; ++f) {
    const int g = f / per_group_out;
    for (int oy = 0; oy < o.h; ++oy) {
      for (int ox = 0; ox < o.w; ++ox) {
        double sum = 0;
        for (int ci = 0; ci < per_group_in; ++ci) {
          for (int ky = 0; ky < p.size; ++ky) {
            for (int kx = 0; kx < p.size; ++kx) {
              const int iy = oy * p.stride - p.padding + ky, ix = ox * p.stride - p.padding + kx;
              if (iy < 0 || iy >= i.h || ix < 0 || ix >= i.w) continue;
              sum += static_cast<double>(in[(static_cast<std::size_t>(g * per_group_in + ci) * i.h + iy) * i.w + ix]) *
                     wt.weights[((static_cast<std::size_t>(f) * per_group_in + ci) * p.size + ky) * p.size + kx];
            }
          }
        }
        float v = static_cast<float>(sum);
        if (p.batch_normalize) {
          v = (v - wt.rolling_mean[f]) / std::sqrt(wt.rolling_variance[f] + 0.000001f) * wt.scales[f];
        }
        v += wt.biases[f];
        out[(static_cast<std::size_t>(f) * o.h + oy) * o.w + ox] = activate(v, p.activation);
      }
    }
  }
  return out;
}

class ConvolutionalTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvolutionalTest, MatchesReferenceLoop) {
  const Layer layer = make_conv_layer(GetParam(), 7);
  const std::vector<float> in = random_vector(static_cast<std::size_t>(layer.input.size()), 11);
  PreparedConvolution prepared(layer);
  Harness harness;
  memory src = harness.input(in, layer.input, tag::nchw);
  expect_close(harness.run(make_convolutional(harness.plan(), prepared, src)), conv_reference(layer, in));
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, ConvolutionalTest,
    ::testing::Values(ConvCase{3, 33, 31, 16, 3, 1, 1, 1, true, Activation::kLeaky},    // first layer
                      ConvCase{3, 32, 32, 16, 3, 2, 1, 1, true, Activation::kLeaky},    // stride 2
                      ConvCase{16, 20, 20, 32, 3, 1, 1, 1, true, Activation::kLeaky},   // 3x3
                      ConvCase{48, 10, 10, 16, 1, 1, 0, 1, true, Activation::kLinear},  // pointwise
                      ConvCase{8, 12, 12, 8, 1, 1, 0, 1, true, Activation::kLinear},    // 8 channels
                      ConvCase{64, 12, 12, 64, 3, 1, 1, 64, true, Activation::kLeaky},  // depthwise
                      ConvCase{48, 13, 13, 48, 3, 2, 1, 48, true, Activation::kLeaky},  // depthwise s2
                      ConvCase{96, 10, 10, 96, 5, 1, 1, 96, true, Activation::kLeaky},  // depthwise 5x5
                      ConvCase{16, 9, 9, 32, 3, 1, 1, 4, true, Activation::kRelu},      // grouped
                      ConvCase{24, 7, 7, 255, 1, 1, 1, 1, false, Activation::kLinear},  // head, bias only
                      ConvCase{24, 7, 7, 30, 3, 1, 1, 1, false, Activation::kLogistic},
                      ConvCase{64, 13, 13, 48, 3, 1, 1, 1, true, Activation::kLeaky},   // Winograd 2x3
                      ConvCase{128, 26, 26, 32, 3, 1, 1, 1, true, Activation::kLeaky},  // Winograd 4x3
                      ConvCase{32, 11, 9, 16, 3, 1, 1, 1, false, Activation::kLinear}));

// Dense 3x3 stride-1 convolutions from 32 input channels up run as Winograd, F(4x4,3x3) from 26x26
// maps up: ours on maps up to 26x26 and wherever oneDNN has none (below AVX-512), oneDNN's on larger
// maps with AVX-512. The cases above check the values.
TEST(ConvolutionalTest, WinogradWhereAvailable) {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());  // feature bits
  const bool avx512 = (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
  const bool avx2 = has_avx2_fma();
  for (int side : {26, 52}) {
    SCOPED_TRACE("map " + std::to_string(side));
    const Layer layer = make_conv_layer(ConvCase{64, side, side, 32, 3, 1, 1, 1, true, Activation::kLeaky}, 7);
    PreparedConvolution prepared(layer);
    Harness harness;
    memory src =
        harness.input(std::vector<float>(static_cast<std::size_t>(layer.input.size())), layer.input, tag::nchw);
    make_convolutional(harness.plan(), prepared, src);
    bool onednn_4x3 = false, own_4x3 = false;
    for (const std::string& name : harness.plan().implementations()) {
      onednn_4x3 |= name.find("jit_wino_4x3") != std::string::npos;
      own_4x3 |= name == "clouddetect:winograd_4x3";
    }
    EXPECT_EQ(onednn_4x3, avx512 && side > 26) << "ISA " << isa;
    EXPECT_EQ(own_4x3, avx2 && !onednn_4x3);
  }
}

// Our Winograd (for CPUs where oneDNN has none), forced here whatever this CPU has: both tile
// sizes, both channel blocks, maps that do not divide into tiles, every activation, maps of
// several blocks of tile rows (winograd_block_bytes()) with a shorter last block, and the fused
// 2x2 stride-2 max pool (even maps, including a partial last tile).
struct OwnWinogradCase {
  int tile;
  tag layout;
  ConvCase conv;
  bool pool = false;
};

// A 2x2 stride-2 max pool of an even NCHW map.
std::vector<float> max_pool_2x2(const std::vector<float>& in, int c, int h, int w) {
  std::vector<float> out(static_cast<std::size_t>(c) * (h / 2) * (w / 2));
  for (int k = 0; k < c; ++k) {
    for (int y = 0; y < h / 2; ++y) {
      for (int x = 0; x < w / 2; ++x) {
        auto at = [&](int dy, int dx) { return in[(static_cast<std::size_t>(k) * h + 2 * y + dy) * w + 2 * x + dx]; };
        out[(static_cast<std::size_t>(k) * (h / 2) + y) * (w / 2) + x] =
            std::max(std::max(at(0, 0), at(0, 1)), std::max(at(1, 0), at(1, 1)));
      }
    }
  }
  return out;
}

class OwnWinogradTest : public ::testing::TestWithParam<OwnWinogradCase> {};

TEST_P(OwnWinogradTest, MatchesReferenceLoop) {
  if (!has_avx2_fma()) GTEST_SKIP() << "needs AVX2 and FMA";
  const Layer layer = make_conv_layer(GetParam().conv, 5);
  const std::vector<float> in = random_vector(static_cast<std::size_t>(layer.input.size()), 6);
  PreparedConvolution prepared(layer);
  Plan plan(dnnl::engine(dnnl::engine::kind::cpu, 0), GetParam().layout);
  Harness harness(std::move(plan));
  ASSERT_TRUE(own_winograd_fits(harness.plan(), layer));
  memory src = harness.input(in, layer.input, tag::nchw);
  const bool pool = GetParam().pool;
  memory out = make_own_winograd(harness.plan(), prepared, src, GetParam().tile, nullptr, pool);
  std::vector<std::string> kernels = harness.plan().implementations();
  EXPECT_NE(std::find(kernels.begin(), kernels.end(),
                      "clouddetect:winograd_" + std::to_string(GetParam().tile) + "x3" + (pool ? "+max_pool_2x2" : "")),
            kernels.end());
  const std::vector<float> conv = conv_reference(layer, in);
  expect_close(harness.run(out), pool ? max_pool_2x2(conv, layer.output.c, layer.output.h, layer.output.w) : conv);
}

INSTANTIATE_TEST_SUITE_P(
    Tiles, OwnWinogradTest,
    ::testing::Values(
        OwnWinogradCase{2, tag::nChw8c, ConvCase{32, 13, 13, 48, 3, 1, 1, 1, true, Activation::kLeaky}},
        OwnWinogradCase{4, tag::nChw8c, ConvCase{32, 26, 26, 16, 3, 1, 1, 1, true, Activation::kLeaky}},
        OwnWinogradCase{4, tag::nChw8c, ConvCase{16, 11, 9, 24, 3, 1, 1, 1, false, Activation::kLinear}},
        OwnWinogradCase{2, tag::nChw8c, ConvCase{8, 7, 10, 8, 3, 1, 1, 1, true, Activation::kRelu}},
        OwnWinogradCase{4, tag::nChw16c, ConvCase{48, 14, 15, 32, 3, 1, 1, 1, true, Activation::kLeaky}},
        OwnWinogradCase{2, tag::nChw16c, ConvCase{16, 9, 6, 16, 3, 1, 1, 1, false, Activation::kLogistic}},
        // several blocks of tile rows for blocks up to 2 MB (a 4 MB L2): 11 rows of 10
        // tiles, 184 KB each (F4); 15 rows of 120 KB (F2)
        OwnWinogradCase{4, tag::nChw8c, ConvCase{64, 44, 39, 64, 3, 1, 1, 1, true, Activation::kLeaky}},
        OwnWinogradCase{2, tag::nChw16c, ConvCase{64, 30, 29, 64, 3, 1, 1, 1, true, Activation::kLeaky}},
        // F(3x3): odd tiles, maps that divide and that do not
        OwnWinogradCase{3, tag::nChw8c, ConvCase{64, 13, 13, 48, 3, 1, 1, 1, true, Activation::kLeaky}},
        OwnWinogradCase{3, tag::nChw8c, ConvCase{16, 9, 12, 8, 3, 1, 1, 1, false, Activation::kLinear}},
        OwnWinogradCase{3, tag::nChw16c, ConvCase{32, 7, 5, 32, 3, 1, 1, 1, true, Activation::kLogistic}},
        // fused pool
        OwnWinogradCase{4, tag::nChw8c, ConvCase{32, 26, 26, 16, 3, 1, 1, 1, true, Activation::kLeaky}, true},
        OwnWinogradCase{4, tag::nChw8c, ConvCase{64, 44, 40, 64, 3, 1, 1, 1, true, Activation::kLeaky}, true},
        OwnWinogradCase{2, tag::nChw8c, ConvCase{8, 10, 14, 8, 3, 1, 1, 1, true, Activation::kRelu}, true},
        OwnWinogradCase{4, tag::nChw16c, ConvCase{16, 6, 10, 32, 3, 1, 1, 1, false, Activation::kLogistic}, true}));

// The first convolution over the image's few channels with the 2x2 pool after it, in our own pass
// (nChw8c): interior and border pixels, 1 to 4 channels, 16 and 32 filters, every activation.
TEST(InputConvolutionTest, PooledMatchesReferenceLoop) {
  if (!has_avx2_fma()) GTEST_SKIP() << "needs AVX2 and FMA";
  const ConvCase cases[] = {ConvCase{3, 14, 10, 16, 3, 1, 1, 1, true, Activation::kLeaky},
                            ConvCase{1, 2, 2, 32, 3, 1, 1, 1, false, Activation::kRelu},
                            ConvCase{4, 6, 8, 16, 3, 1, 1, 1, true, Activation::kLinear},
                            ConvCase{2, 4, 12, 32, 3, 1, 1, 1, false, Activation::kLogistic}};
  for (const ConvCase& conv : cases) {
    SCOPED_TRACE(std::to_string(conv.c) + " channels, " + std::to_string(conv.h) + "x" + std::to_string(conv.w));
    const Layer layer = make_conv_layer(conv, 21);
    const std::vector<float> in = random_vector(static_cast<std::size_t>(layer.input.size()), 22);
    PreparedConvolution prepared(layer);
    Harness harness(Plan(dnnl::engine(dnnl::engine::kind::cpu, 0), tag::nChw8c));
    ASSERT_TRUE(input_convolution_pooled_fits(harness.plan(), layer));
    memory src = harness.input(in, layer.input, tag::nchw);
    const memory out = make_input_convolution_pooled(harness.plan(), prepared, src);
    expect_close(harness.run(out),
                 max_pool_2x2(conv_reference(layer, in), layer.output.c, layer.output.h, layer.output.w));
  }
}

// A [shortcut] fused into the convolution before it: act2(act1(conv) + from), in place in `from`.
TEST(ConvolutionalTest, FusedShortcutMatchesReferenceLoop) {
  for (Activation after : {Activation::kLinear, Activation::kLeaky}) {
    for (int filters : {24, 32}) {
      const Layer layer = make_conv_layer(ConvCase{16, 9, 11, filters, 1, 1, 0, 1, true, Activation::kLinear}, 9);
      const std::vector<float> in = random_vector(static_cast<std::size_t>(layer.input.size()), 12);
      const std::vector<float> from = random_vector(static_cast<std::size_t>(layer.output.size()), 13);
      std::vector<float> expected = conv_reference(layer, in);
      for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = activate(expected[i] + from[i], after);
      PreparedConvolution prepared(layer);
      Harness harness;
      memory src = harness.input(in, layer.input, tag::nchw);
      memory accumulate = harness.input(from, layer.output, harness.plan().activation_desc({1, filters, 9, 11}));
      expect_close(harness.run(make_convolutional(harness.plan(), prepared, src, &accumulate, after)), expected);
    }
  }
}

// ---- [convolutional], int8 ----
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

// ---- [maxpool] ----

struct PoolCase {
  int c, h, w, size, stride;
  tag layout;
};

std::vector<float> maxpool_reference(const Layer& layer, const std::vector<float>& in) {
  const auto& p = layer.maxpool;
  const Shape i = layer.input, o = layer.output;
  const int offset = -p.padding / 2;
  std::vector<float> out(static_cast<std::size_t>(o.size()));
  for (int c = 0; c < o.c; ++c) {
    for (int oy = 0; oy < o.h; ++oy) {
      for (int ox = 0; ox < o.w; ++ox) {
        float best = -FLT_MAX;
        for (int ky = 0; ky < p.size; ++ky) {
          for (int kx = 0; kx < p.size; ++kx) {
            const int iy = offset + oy * p.stride + ky, ix = offset + ox * p.stride + kx;
            if (iy < 0 || iy >= i.h || ix < 0 || ix >= i.w) continue;
            best = std::max(best, in[(static_cast<std::size_t>(c) * i.h + iy) * i.w + ix]);
          }
        }
        out[(static_cast<std::size_t>(c) * o.h + oy) * o.w + ox] = best;
      }
    }
  }
  return out;
}

class MaxpoolTest : public ::testing::TestWithParam<PoolCase> {};

TEST_P(MaxpoolTest, MatchesReferenceLoop) {
  const PoolCase k = GetParam();
  Layer layer;
  layer.type = darknet::LayerType::kMaxpool;
  layer.maxpool = {k.size, k.stride, k.size - 1};
  layer.input = {k.c, k.h, k.w};
  layer.output = {k.c, (k.h + k.size - 1 - k.size) / k.stride + 1, (k.w + k.size - 1 - k.size) / k.stride + 1};
  const std::vector<float> in = random_vector(static_cast<std::size_t>(layer.input.size()), 3);
  Harness harness;
  memory src = harness.input(in, layer.input, k.layout);
  expect_close(harness.run(make_maxpool(harness.plan(), layer, src)), maxpool_reference(layer, in));
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, MaxpoolTest,
    ::testing::Values(PoolCase{16, 26, 26, 2, 2, tag::nChw16c},  // yolov3-tiny
                      PoolCase{16, 13, 13, 2, 2, tag::nChw16c},  // odd: pads right
                      PoolCase{32, 13, 13, 2, 1, tag::nChw16c},  // size 2 stride 1
                      PoolCase{8, 13, 11, 2, 1, tag::nChw8c}, PoolCase{8, 1, 4, 2, 1, tag::nChw8c},
                      PoolCase{16, 5, 1, 2, 1, tag::nChw16c}, PoolCase{24, 10, 10, 3, 1, tag::nChw16c},  // SPP
                      PoolCase{16, 10, 10, 5, 1, tag::nchw}, PoolCase{16, 10, 10, 9, 1, tag::nChw16c},
                      PoolCase{8, 26, 24, 2, 2, tag::nChw8c},                                             // ours (AVX2)
                      PoolCase{32, 14, 10, 2, 2, tag::nChw16c}, PoolCase{16, 12, 12, 2, 2, tag::nchw}));  // oneDNN's

// 2x2 pools of blocked fp32 maps, stride 2 on even maps and stride 1, run our loops on AVX2+FMA
// CPUs (faster than oneDNN 2.6's); MatchesReferenceLoop checks their values.
TEST(MaxpoolTest, OwnLoopsForTwoByTwo) {
  for (int stride : {2, 1}) {
    Layer layer;
    layer.type = darknet::LayerType::kMaxpool;
    layer.maxpool = {2, stride, 1};
    layer.input = {16, 26, 26};
    layer.output = stride == 2 ? Shape{16, 13, 13} : Shape{16, 26, 26};
    Harness harness;
    memory src = harness.input(std::vector<float>(static_cast<std::size_t>(layer.input.size())), layer.input,
                               harness.plan().activation_desc({1, 16, 26, 26}));
    make_maxpool(harness.plan(), layer, src);
    const std::vector<std::string> kernels = harness.plan().implementations();
    const std::string own = stride == 2 ? "clouddetect:max_pool_2x2" : "clouddetect:max_pool_2x2_stride_1";
    EXPECT_EQ(std::count(kernels.begin(), kernels.end(), own), has_avx2_fma() ? 1 : 0) << own;
  }
}

// ---- [upsample] ----

TEST(UpsampleTest, MatchesReferenceLoop) {
  for (tag layout : {tag::nChw16c, tag::nChw8c, tag::nchw}) {
    for (int stride : {2, 3}) {
      Layer layer;
      layer.type = darknet::LayerType::kUpsample;
      layer.upsample_stride = stride;
      layer.input = {24, 7, 5};
      layer.output = {24, 7 * stride, 5 * stride};
      const std::vector<float> in = random_vector(static_cast<std::size_t>(layer.input.size()), 5);
      std::vector<float> expected(static_cast<std::size_t>(layer.output.size()));
      for (int c = 0; c < 24; ++c) {
        for (int y = 0; y < layer.output.h; ++y) {
          for (int x = 0; x < layer.output.w; ++x) {
            expected[(static_cast<std::size_t>(c) * layer.output.h + y) * layer.output.w + x] =
                in[(static_cast<std::size_t>(c) * 7 + y / stride) * 5 + x / stride];
          }
        }
      }
      Harness harness;
      memory src = harness.input(in, layer.input, layout);
      expect_close(harness.run(make_upsample(harness.plan(), layer, src)), expected);
    }
  }
}

// ---- [route] ----

struct RouteCase {
  std::vector<int> channels;  // of each routed input
  int groups, group_id;
  tag layout;
};

class RouteTest : public ::testing::TestWithParam<RouteCase> {};

TEST_P(RouteTest, MatchesReferenceLoop) {
  const RouteCase k = GetParam();
  const int h = 6, w = 5;
  Layer layer;
  layer.type = darknet::LayerType::kRoute;
  layer.route.groups = k.groups;
  layer.route.group_id = k.group_id;
  Harness harness;
  std::vector<memory> inputs;
  std::vector<float> expected;
  int out_c = 0;
  for (std::size_t i = 0; i < k.channels.size(); ++i) {
    const int c = k.channels[i];
    const std::vector<float> in = random_vector(static_cast<std::size_t>(c * h * w), 20 + static_cast<unsigned>(i));
    inputs.push_back(harness.input(in, Shape{c, h, w}, k.layout));
    const int part = c / k.groups;
    expected.insert(expected.end(), in.begin() + part * k.group_id * h * w,
                    in.begin() + part * (k.group_id + 1) * h * w);
    out_c += part;
  }
  layer.output = {out_c, h, w};
  expect_close(harness.run(make_route(harness.plan(), layer, inputs)), expected);
}

INSTANTIATE_TEST_SUITE_P(Kinds, RouteTest,
                         ::testing::Values(RouteCase{{128, 256}, 1, 0, tag::nChw16c},        // yolov3-tiny
                                           RouteCase{{96, 96, 96, 96}, 1, 0, tag::nChw16c},  // SPP
                                           RouteCase{{16, 24}, 1, 0, tag::nChw8c},
                                           RouteCase{{16, 8}, 1, 0, tag::nChw16c},  // unaligned concat
                                           RouteCase{{64}, 1, 0, tag::nChw16c},     // alias
                                           RouteCase{{64}, 2, 1, tag::nChw16c},     // aligned slice
                                           RouteCase{{24}, 2, 1, tag::nChw16c},     // unaligned slice
                                           RouteCase{{32, 48}, 2, 0, tag::nchw}));

// ---- [shortcut] ----

TEST(ShortcutTest, MatchesReferenceLoop) {
  for (Activation activation : {Activation::kLinear, Activation::kLeaky, Activation::kLogistic}) {
    for (tag layout : {tag::nChw16c, tag::nChw8c}) {
      SCOPED_TRACE(std::string(darknet::to_string(activation)) + (layout == tag::nChw16c ? " nChw16c" : " nChw8c"));
      Layer layer;
      layer.type = darknet::LayerType::kShortcut;
      layer.shortcut.activation = activation;
      layer.input = layer.output = {24, 9, 7};
      const std::size_t n = static_cast<std::size_t>(layer.output.size());
      const std::vector<float> a = random_vector(n, 31), b = random_vector(n, 32);
      std::vector<float> expected(n);
      for (std::size_t i = 0; i < n; ++i) expected[i] = activate(a[i] + b[i], activation);
      Harness harness;
      memory previous = harness.input(a, layer.output, layout);
      memory from = harness.input(b, layer.output, tag::nchw);  // a different layout is reordered
      expect_close(harness.run(make_shortcut(harness.plan(), layer, previous, from)), expected);
    }
  }
}

// ---- errors ----

TEST(OnednnBackendTest, RejectsUnsupportedLayerNamingTheLine) {
  auto model = std::make_shared<darknet::Model>();
  model->cfg_path = "odd.cfg";
  Layer layer;
  layer.type = static_cast<darknet::LayerType>(99);  // a kind this backend does not know
  layer.line = 42;
  model->layers.push_back(layer);
  try {
    make_onednn_backend(model, BackendOptions{});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("odd.cfg:42"), std::string::npos) << e.what();
  }
}

TEST(OnednnBackendTest, Int8WithoutActivationRangesIsRefused) {
  auto model = std::make_shared<darknet::Model>();
  model->name = "tiny";
  BackendOptions options;
  options.precision = Precision::kInt8;
  try {
    make_onednn_backend(model, options);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("calibrate"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace clouddetect::onednn
