// The graph analysis on the real cfgs and on small networks built for one rule each.
#include "backends/onednn/graph.h"

#include <gtest/gtest.h>

#include "../tests/shared_data.h"
#include "darknet/cfg_parser.h"

namespace clouddetect::onednn {
namespace {

using testing::model_dir;

darknet::Model yolov3_tiny() { return darknet::parse_cfg_file(model_dir("yolov3-tiny") + "/yolov3-tiny.cfg"); }

const char* kNet = "[net]\nwidth=32\nheight=32\nchannels=3\n";
std::string conv(int filters, const char* activation = "leaky") {
  return "[convolutional]\nfilters=" + std::to_string(filters) + "\nsize=3\nstride=1\npad=1\nactivation=" + activation +
         "\n";
}
const char* kHead =
    "[convolutional]\nfilters=18\nsize=1\nstride=1\npad=1\nactivation=linear\n"
    "[yolo]\nmask=0,1\nanchors=1,2,3,4,5,6\nclasses=4\nnum=3\n";

darknet::Model parse(const std::string& text) { return darknet::parse_cfg_text(text, "t.cfg"); }

TEST(GraphTest, Yolov3TinyStorageAndHeads) {
  const darknet::Model model = yolov3_tiny();
  const GraphAnalysis graph = analyse_graph(model, Mode::kFp32, 8);
  const int n = static_cast<int>(model.layers.size());
  // [yolo] aliases the convolution before it; the [route] of one whole layer (17: -4) aliases 13.
  EXPECT_EQ(graph.storage[16], 15);
  EXPECT_EQ(graph.storage[17], 13);
  EXPECT_EQ(graph.storage[23], 22);
  EXPECT_TRUE(graph.feeds_head[15] && graph.feeds_head[22]);
  EXPECT_FALSE(graph.feeds_head[13]);
  EXPECT_EQ(graph.last_read[15], n);   // the head copy reads it after every layer
  EXPECT_EQ(graph.last_read[13], 18);  // 14 and, through the route 17, 18
  EXPECT_EQ(graph.readers[8], (std::vector<int>{9, 20}));
  EXPECT_EQ(graph.shortcut_of, std::vector<int>(n, -1));
}

TEST(GraphTest, Yolov3TinyFusions) {
  const darknet::Model model = yolov3_tiny();
  const GraphAnalysis graph = analyse_graph(model, Mode::kFp32, 8);
  // The convolutions before the stride-2 pools of even maps whose only reader is the pool; not 8
  // (the route 20 reads it too) nor 10 (its pool has stride 1).
  for (int conv : {0, 2, 4, 6}) EXPECT_TRUE(graph.pool_after[conv]) << conv;
  for (int conv : {8, 10, 12, 13}) EXPECT_FALSE(graph.pool_after[conv]) << conv;
  // Route 20 (19, 8): the upsample and the convolution write their channel ranges of it.
  EXPECT_EQ(graph.route_in_place[20], 20);
  EXPECT_EQ(graph.route_in_place[19], 20);
  EXPECT_EQ(graph.route_in_place[8], 20);
  EXPECT_EQ(graph.route_in_place[17], -1);  // an alias, not a concatenation
}

TEST(GraphTest, Int8AndCalibrationWriteNoRouteInPlaceAndPoolNothingInside) {
  const darknet::Model model = yolov3_tiny();
  const int n = static_cast<int>(model.layers.size());
  for (Mode mode : {Mode::kInt8, Mode::kCalibrate}) {
    const GraphAnalysis graph = analyse_graph(model, mode, 8);
    EXPECT_EQ(graph.route_in_place, std::vector<int>(n, -1));
    EXPECT_EQ(graph.pool_after, std::vector<bool>(n, false));
  }
}

TEST(GraphTest, RoutePartsNeedWholeChannelBlocks) {
  // 12 channels: not whole nChw8c blocks, so the concatenation is copied.
  const darknet::Model model =
      parse(std::string(kNet) + conv(16) + conv(12) + conv(16) + "[route]\nlayers=-1,-2\n" + kHead);
  EXPECT_EQ(analyse_graph(model, Mode::kFp32, 8).route_in_place[3], -1);
  EXPECT_EQ(analyse_graph(model, Mode::kFp32, 4).route_in_place[3], 3);
  EXPECT_EQ(analyse_graph(model, Mode::kFp32, 1).route_in_place[3], -1);  // plain layouts: no views
}

TEST(GraphTest, ShortcutThroughDropoutFusesIntoTheConvolution) {
  // Yolo-Fastest's residual: conv 1 -> conv 2 -> dropout 3 -> shortcut 4 (from 0).
  const darknet::Model model = parse(std::string(kNet) + conv(8) + conv(8) + conv(8, "linear") +
                                     "[dropout]\nprobability=.15\n[shortcut]\nfrom=-4\nactivation=linear\n" + kHead);
  const GraphAnalysis fp32 = analyse_graph(model, Mode::kFp32, 8);
  EXPECT_EQ(fp32.shortcut_of[2], 4);
  EXPECT_EQ(fp32.storage[3], 2);  // the dropout aliases the convolution
  EXPECT_EQ(analyse_graph(model, Mode::kInt8, 8).shortcut_of[2], 4);
  EXPECT_EQ(analyse_graph(model, Mode::kCalibrate, 8).shortcut_of[2], -1);  // every output measured
}

TEST(GraphTest, ShortcutAfterAnActivatedConvolutionFusesInFp32Only) {
  // yolov3's residual: a leaky 3x3 convolution, then the shortcut. In fp32 our Winograd adds it in
  // its output transform; in int8 oneDNN would run its reference kernel.
  const darknet::Model model = parse(std::string(kNet) + conv(8) + conv(8) + conv(8, "leaky") +
                                     "[shortcut]\nfrom=-3\nactivation=linear\n" + kHead);
  EXPECT_EQ(analyse_graph(model, Mode::kFp32, 8).shortcut_of[2], 3);
  EXPECT_EQ(analyse_graph(model, Mode::kInt8, 8).shortcut_of[2], -1);
}

TEST(GraphTest, ShortcutIsNotFusedWhenItsFromIsReadLaterOrByTheConvolution) {
  // `from` (0) is read again by the route after the shortcut: accumulating into it would clobber it.
  const darknet::Model read_later = parse(std::string(kNet) + conv(8) + conv(8) + conv(8, "linear") +
                                          "[shortcut]\nfrom=-3\nactivation=linear\n[route]\nlayers=-1,-4\n" + kHead);
  EXPECT_EQ(analyse_graph(read_later, Mode::kFp32, 8).shortcut_of[2], -1);
  // The convolution reads `from` itself (from = the layer before it).
  const darknet::Model reads_from =
      parse(std::string(kNet) + conv(8) + conv(8, "linear") + "[shortcut]\nfrom=-2\nactivation=linear\n" + kHead);
  EXPECT_EQ(analyse_graph(reads_from, Mode::kFp32, 8).shortcut_of[1], -1);
}

TEST(GraphTest, YoloFastestFusesEveryShortcut) {
  for (const char* name : {"yolo-fastest-1.1", "yolo-fastest-1.1-xl"}) {
    const darknet::Model model = darknet::parse_cfg_file(model_dir(name) + "/" + name + ".cfg");
    const GraphAnalysis graph = analyse_graph(model, Mode::kFp32, 16);
    int shortcuts = 0, fused = 0;
    for (const darknet::Layer& layer : model.layers) {
      shortcuts += layer.type == darknet::LayerType::kShortcut;
      fused += layer.type == darknet::LayerType::kConvolutional && graph.shortcut_of[layer.index] >= 0;
    }
    EXPECT_GT(shortcuts, 0) << name;
    EXPECT_EQ(fused, shortcuts) << name;
  }
}

}  // namespace
}  // namespace clouddetect::onednn
