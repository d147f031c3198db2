// int8 scales from activation ranges, on small networks with known ranges.
#include "backends/onednn/int8_scales.h"

#include <gtest/gtest.h>

#include "backends/onednn/graph.h"
#include "darknet/cfg_parser.h"

namespace clouddetect::onednn {
namespace {

// conv 0 -> conv 1 -> conv 2 (linear) -> shortcut 3 (from 0) -> head conv 4 -> yolo 5; 2 channels
// everywhere but the head.
darknet::Model residual_net() {
  std::string text = "[net]\nwidth=8\nheight=8\nchannels=2\n";
  for (const char* activation : {"leaky", "leaky", "linear"}) {
    text += std::string("[convolutional]\nfilters=2\nsize=1\nstride=1\npad=0\nactivation=") + activation + "\n";
  }
  text += "[shortcut]\nfrom=-3\nactivation=linear\n";
  text += "[convolutional]\nfilters=18\nsize=1\nstride=1\npad=0\nactivation=linear\n";
  text += "[yolo]\nmask=0,1\nanchors=1,2,3,4,5,6\nclasses=4\nnum=3\n";
  return darknet::parse_cfg_text(text, "t.cfg");
}

// Each channel of layer i in [-(i + 1), (i + 1) * (c + 1)], every image reaching that maximum.
ActivationRanges ranges_of(const darknet::Model& model) {
  ActivationRanges ranges;
  for (const darknet::Layer& layer : model.layers) {
    const auto channels = static_cast<std::size_t>(layer.output.c);
    const float i = static_cast<float>(layer.index + 1);
    ranges.absmax.push_back(i * static_cast<float>(channels));
    ranges.channel_min.emplace_back(channels, -i);
    std::vector<float> highest;
    for (std::size_t c = 0; c < channels; ++c) highest.push_back(i * static_cast<float>(c + 1));
    ranges.channel_max.push_back(highest);
    ranges.channel_peak_mean.push_back(highest);
    ranges.channel_peak_sd.emplace_back(channels, 0.0f);
  }
  return ranges;
}

TEST(Int8ScalesTest, AFusedShortcutGroupSharesTheWidestRangePerChannel) {
  const darknet::Model model = residual_net();
  const GraphAnalysis graph = analyse_graph(model, Mode::kInt8, 1);
  ASSERT_EQ(graph.shortcut_of[2], 3);
  const std::vector<Quantisation> layers = int8_quantisations(model, ranges_of(model), graph.shortcut_of);
  // Layer 1 stands alone: channel c's range is 2 * (c + 1), as wide below zero as above in
  // channel 0: a zero point gains too little.
  EXPECT_EQ(layers[1].zero_point, 0);
  EXPECT_FLOAT_EQ(layers[1].scales[0], 2.0f / 127);
  EXPECT_FLOAT_EQ(layers[1].scales[1], 4.0f / 127);
  // Layers 0, 2 and 3 (conv, shortcut and its from) share the widest: layer 3's 4 * (c + 1).
  for (int layer : {0, 2, 3}) {
    EXPECT_EQ(layers[layer].zero_point, 0) << layer;
    EXPECT_FLOAT_EQ(layers[layer].scales[0], 4.0f / 127) << layer;
    EXPECT_FLOAT_EQ(layers[layer].scales[1], 8.0f / 127) << layer;
  }
}

TEST(Int8ScalesTest, ALopsidedLayerIsAsymmetricUnlessItsGroupSharesScales) {
  const darknet::Model model = residual_net();
  const GraphAnalysis graph = analyse_graph(model, Mode::kInt8, 1);
  ActivationRanges ranges = ranges_of(model);
  // After leaky: each channel reaches a tenth as far below zero as above, in layers 0 and 1.
  for (int layer : {0, 1}) {
    for (std::size_t c = 0; c < 2; ++c) ranges.channel_min[layer][c] = -ranges.channel_max[layer][c] / 10;
  }
  const std::vector<Quantisation> layers = int8_quantisations(model, ranges, graph.shortcut_of);
  // Layer 1: u8 codes below the zero point hold the negative tenth, the rest the positive side:
  // steps about 127 / 232 of the symmetric ones, and no value outside the codes.
  EXPECT_NEAR(layers[1].zero_point, 23, 1);
  for (std::size_t c = 0; c < 2; ++c) {
    const float high = ranges.channel_max[1][c];
    const float step = layers[1].scales[c];
    EXPECT_LT(step, high / 127 / 1.7f) << c;
    EXPECT_LE(high, step * static_cast<float>(255 - layers[1].zero_point) * 1.0001f) << c;
    EXPECT_LE(high / 10, step * static_cast<float>(layers[1].zero_point) * 1.0001f) << c;
  }
  // Layer 0 shares its scales with a fused shortcut's sum: symmetric s8.
  EXPECT_EQ(layers[0].zero_point, 0);
  EXPECT_FLOAT_EQ(layers[0].scales[1], 8.0f / 127);
}

TEST(Int8ScalesTest, AnOutlierMaximumIsClippedToTheTypicalPeak) {
  const darknet::Model model = residual_net();
  ActivationRanges ranges = ranges_of(model);
  // Layer 1, channel 0: maximum 2 (one outlier image), typical peak 1 +- 0.1: range 1 + 3 * 0.1.
  ranges.channel_peak_mean[1] = {1.0f, 4.0f};
  ranges.channel_peak_sd[1] = {0.1f, 1.0f};  // channel 1: 4 + 3 > its maximum 4: the maximum
  const std::vector<Quantisation> layers = int8_quantisations(model, ranges, std::vector<int>(model.layers.size(), -1));
  EXPECT_FLOAT_EQ(layers[1].scales[0], (1.0f + kPeakDeviations * 0.1f) / 127);
  EXPECT_FLOAT_EQ(layers[1].scales[1], 4.0f / 127);
}

TEST(Int8ScalesTest, RouteScalesSliceTheGroupAndConcatenate) {
  // One tensor-wide scale expanded to 4 channels, and per-channel scales; group 1 of 2.
  EXPECT_EQ(route_scales({{0.5f}, {1, 2, 3, 4}}, {4, 4}, 2, 1), (Scales{0.5f, 0.5f, 3, 4}));
  EXPECT_EQ(route_scales({{1, 2}, {3}}, {2, 1}, 1, 0), (Scales{1, 2, 3}));
  EXPECT_EQ(inverse({0.5f, 4.0f}), (Scales{2.0f, 0.25f}));
}

}  // namespace
}  // namespace clouddetect::onednn
