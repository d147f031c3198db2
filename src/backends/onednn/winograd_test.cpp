// Our own AVX2 kernels (onednn/kernels/) forced whatever this CPU has, against the darknet-style loop.
#include "backends/onednn/kernels/winograd.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "backends/onednn/kernels/input_convolution.h"
#include "backends/onednn/kernels/lanes.h"
#include "backends/onednn/layer_test_support.h"
#include "backends/onednn/layers/convolutional.h"

namespace clouddetect::onednn::layer_test {
namespace {

// Our Winograd (for CPUs where oneDNN has none), forced here whatever this CPU has: both tile
// sizes, both channel blocks, maps that do not divide into tiles, every activation, maps of
// several blocks of tile rows (winograd_block_bytes()) with a shorter last block, and the fused
// 2x2 stride-2 max pool (even maps, including a partial last tile); the products as a batched matmul
// and, for large transformed weights, as our panels (rows in whole kernels and not, filters that
// do not fill a panel: the matmul); stride 2 (every tile, even and odd maps).
struct OwnWinogradCase {
  int tile;
  tag layout;
  ConvCase conv;
  bool pool = false;
  bool panels = false;
};

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
                      "clouddetect:winograd_" + std::to_string(GetParam().tile) + "x3" +
                          (GetParam().conv.stride == 2 ? "s2" : "") + (pool ? "+max_pool_2x2" : "") +
                          (GetParam().panels ? "/panels" : "")),
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
        OwnWinogradCase{4, tag::nChw16c, ConvCase{16, 6, 10, 32, 3, 1, 1, 1, false, Activation::kLogistic}, true},
        // products as our panels: 16 MB of F(2x2) weights (49 rows of tiles), 18 MB of F(4x4) ones
        // (6 and 9 rows), 34 MB in nChw16c (the AVX-512 panels where the CPU has it: 20 rows);
        // 10 MB of F(4x4) weights for 264 filters, not whole panels: the matmul
        OwnWinogradCase{2, tag::nChw8c, ConvCase{512, 13, 13, 512, 3, 1, 1, 1, true, Activation::kLeaky}, false, true},
        OwnWinogradCase{4, tag::nChw8c, ConvCase{256, 9, 7, 512, 3, 1, 1, 1, false, Activation::kMish}, false, true},
        OwnWinogradCase{4, tag::nChw8c, ConvCase{256, 10, 12, 512, 3, 1, 1, 1, true, Activation::kLeaky}, true, true},
        OwnWinogradCase{2, tag::nChw16c, ConvCase{512, 9, 7, 1024, 3, 1, 1, 1, true, Activation::kLeaky}, false, true},
        OwnWinogradCase{4, tag::nChw8c, ConvCase{256, 12, 12, 264, 3, 1, 1, 1, true, Activation::kLeaky}},
        // stride 2: maps that halve into whole tiles and that do not, odd maps
        OwnWinogradCase{4, tag::nChw8c, ConvCase{32, 32, 32, 64, 3, 2, 1, 1, true, Activation::kLeaky}},
        OwnWinogradCase{4, tag::nChw16c, ConvCase{16, 21, 26, 32, 3, 2, 1, 1, false, Activation::kMish}},
        OwnWinogradCase{3, tag::nChw8c, ConvCase{16, 26, 26, 24, 3, 2, 1, 1, true, Activation::kLinear}},
        OwnWinogradCase{3, tag::nChw16c, ConvCase{32, 13, 9, 16, 3, 2, 1, 1, true, Activation::kLogistic}},
        OwnWinogradCase{2, tag::nChw8c, ConvCase{8, 11, 14, 16, 3, 2, 1, 1, true, Activation::kRelu}},
        OwnWinogradCase{2, tag::nChw16c, ConvCase{32, 26, 26, 64, 3, 2, 1, 1, true, Activation::kLeaky}},
        OwnWinogradCase{4, tag::nChw8c, ConvCase{64, 88, 86, 64, 3, 2, 1, 1, true, Activation::kLeaky}},
        // stride 2 with the panels: 25 MB of F(3x3) weights, as yolov3's 256->512 stride-2 layer
        OwnWinogradCase{3, tag::nChw8c, ConvCase{256, 26, 26, 512, 3, 2, 1, 1, true, Activation::kLeaky}, false,
                        true}));

// A [shortcut] fused into our Winograd: act2(act1(conv) + from), in place in `from`: every tile,
// both layouts, the matmul and the panels, maps that do not divide into tiles.
TEST(OwnWinogradTest, FusedShortcutMatchesReferenceLoop) {
  if (!has_avx2_fma()) GTEST_SKIP() << "needs AVX2 and FMA";
  const struct {
    int tile;
    tag layout;
    ConvCase conv;
    Activation after;
  } cases[] = {
      {4, tag::nChw8c, ConvCase{32, 26, 26, 32, 3, 1, 1, 1, true, Activation::kLeaky}, Activation::kLinear},
      {3, tag::nChw8c, ConvCase{512, 13, 13, 512, 3, 1, 1, 1, true, Activation::kLeaky}, Activation::kLeaky},
      {2, tag::nChw16c, ConvCase{32, 9, 7, 32, 3, 1, 1, 1, false, Activation::kMish}, Activation::kLinear},
      {4, tag::nChw16c, ConvCase{16, 11, 10, 16, 3, 1, 1, 1, true, Activation::kLogistic}, Activation::kRelu},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("F(" + std::to_string(c.tile) + "), " + std::to_string(c.conv.c) + " channels, " +
                 std::to_string(c.conv.h) + "x" + std::to_string(c.conv.w));
    const Layer layer = make_conv_layer(c.conv, 31);
    const std::vector<float> in = random_vector(static_cast<std::size_t>(layer.input.size()), 32);
    const std::vector<float> from = random_vector(static_cast<std::size_t>(layer.output.size()), 33);
    std::vector<float> expected = conv_reference(layer, in);
    for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = activate(expected[i] + from[i], c.after);
    PreparedConvolution prepared(layer);
    Harness harness(Plan(dnnl::engine(dnnl::engine::kind::cpu, 0), c.layout));
    ASSERT_TRUE(own_winograd_fits(harness.plan(), layer));
    memory src = harness.input(in, layer.input, tag::nchw);
    const memory accumulate = harness.input(
        from, layer.output, harness.plan().activation_desc({1, layer.output.c, layer.output.h, layer.output.w}));
    expect_close(harness.run(make_own_winograd(harness.plan(), prepared, src, c.tile, &accumulate, false, &c.after)),
                 expected);
  }
}

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

}  // namespace
}  // namespace clouddetect::onednn::layer_test
