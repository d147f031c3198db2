// [maxpool], [upsample], [route] and [shortcut] on random data against darknet-style loops, and the
// backend's refusals. The convolutions have files of their own (layer_test_support.h is shared).
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "backends/onednn/kernels/lanes.h"
#include "backends/onednn/layer_test_support.h"
#include "backends/onednn/layers/maxpool.h"
#include "backends/onednn/layers/route.h"
#include "backends/onednn/layers/shortcut.h"
#include "backends/onednn/layers/upsample.h"
#include "backends/onednn/onednn_backend.h"
#include "core/error.h"

namespace clouddetect::onednn::layer_test {
namespace {

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
  // Whole channel blocks in the plan's layout are concatenated by copying each part's storage.
  const bool copied = std::all_of(k.channels.begin(), k.channels.end(), [&](int c) {
    return k.groups == 1 && k.channels.size() > 1 &&
           c % channel_block(harness.plan().activation_desc({1, c, h, w})) == 0 &&
           harness.plan().activation_desc({1, c, h, w}) == memory::desc({1, c, h, w}, memory::data_type::f32, k.layout);
  });
  const std::vector<std::string> steps = harness.plan().implementations();
  EXPECT_EQ(std::count(steps.begin(), steps.end(), "clouddetect:concat"), copied ? 1 : 0);
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
}  // namespace clouddetect::onednn::layer_test
