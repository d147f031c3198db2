// [convolutional] in fp32 on random data against the darknet-style loop (layer_test_support.h).
#include "backends/onednn/layers/convolutional.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "backends/onednn/kernels/lanes.h"
#include "backends/onednn/layer_test_support.h"

namespace clouddetect::onednn::layer_test {
namespace {

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
// maps up: ours on maps up to 26x26, on larger maps with enough channels (64 -> 128, not 64 -> 64)
// and wherever oneDNN has none (below AVX-512), oneDNN's elsewhere with AVX-512. The cases above
// check the values.
TEST(ConvolutionalTest, WinogradWhereAvailable) {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());  // feature bits
  const bool avx512 = (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
  const bool avx2 = has_avx2_fma();
  struct Case {
    int channels, filters, side;
    bool onednn_with_avx512;
  };
  for (const Case c : {Case{64, 32, 26, false}, Case{64, 128, 52, false}, Case{64, 64, 52, true}}) {
    SCOPED_TRACE(std::to_string(c.channels) + " -> " + std::to_string(c.filters) + ", map " + std::to_string(c.side));
    const Layer layer =
        make_conv_layer(ConvCase{c.channels, c.side, c.side, c.filters, 3, 1, 1, 1, true, Activation::kLeaky}, 7);
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
    EXPECT_EQ(onednn_4x3, avx512 && c.onednn_with_avx512) << "ISA " << isa;
    EXPECT_EQ(own_4x3, avx2 && !onednn_4x3);
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

}  // namespace
}  // namespace clouddetect::onednn::layer_test
