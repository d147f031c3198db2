#include "darknet/cfg_parser.h"

#include <gtest/gtest.h>

#include "../tests/shared_data.h"
#include "core/error.h"

namespace clouddetect::darknet {
namespace {

using clouddetect::testing::model_dir;

std::string error_of(const std::string& cfg) {
  try {
    parse_cfg_text(cfg, "t.cfg");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "";
}

const char* kTinyNet =
    "[net]\nwidth=32\nheight=32\nchannels=3\n"
    "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
    "[maxpool]\nsize=2\nstride=2\n"
    "[convolutional]\nfilters=18\nsize=1\nstride=1\npad=1\nactivation=linear\n"
    "[yolo]\nmask=0,1\nanchors=1,2,3,4,5,6\nclasses=4\nnum=3\n";

TEST(CfgParser, ParsesYolov3TinyShapes) {
  Model model = parse_cfg_file(model_dir("yolov3-tiny") + "/yolov3-tiny.cfg");
  EXPECT_EQ(model.name, "yolov3-tiny");
  EXPECT_EQ(model.width, 416);
  ASSERT_EQ(model.layers.size(), 24u);
  // The size-2 stride-1 maxpool keeps 13x13 (darknet pads right/bottom by one).
  EXPECT_EQ(model.layers[11].type, LayerType::kMaxpool);
  EXPECT_EQ(model.layers[11].output.w, 13);
  EXPECT_EQ(model.layers[11].output.c, 512);
  EXPECT_EQ(model.yolo_layers(), (std::vector<int>{16, 23}));
  EXPECT_EQ(model.layers[15].output.c, 255);
  EXPECT_EQ(model.layers[22].output.h, 26);
  EXPECT_EQ(model.layers[20].route.layers, (std::vector<int>{19, 8}));
  EXPECT_EQ(model.layers[20].output.c, 384);
  EXPECT_EQ(model.layers[16].yolo.mask, (std::vector<int>{3, 4, 5}));
  EXPECT_EQ(model.num_classes(), 80);
}

TEST(CfgParser, ParsesYoloFastestGroupedConvsAndShortcuts) {
  for (const char* name : {"yolo-fastest-1.1", "yolo-fastest-1.1-xl"}) {
    Model model = parse_cfg_file(model_dir(name) + "/" + name + ".cfg");
    EXPECT_EQ(model.width, 320) << name;
    int depthwise = 0, shortcuts = 0, dropouts = 0;
    for (const Layer& layer : model.layers) {
      if (layer.type == LayerType::kConvolutional && layer.convolutional.groups > 1) {
        ++depthwise;
        EXPECT_EQ(layer.convolutional.groups, layer.input.c) << name << " layer " << layer.index;
      }
      shortcuts += layer.type == LayerType::kShortcut;
      dropouts += layer.type == LayerType::kDropout;
    }
    EXPECT_EQ(depthwise, 28) << name;
    EXPECT_EQ(shortcuts, 18) << name;
    EXPECT_EQ(dropouts, 18) << name;
    EXPECT_EQ(model.yolo_layers().size(), 2u) << name;
  }
}

TEST(CfgParser, ComputesTinyNetShapes) {
  Model model = parse_cfg_text(kTinyNet, "t.cfg");
  ASSERT_EQ(model.layers.size(), 4u);
  EXPECT_EQ(model.layers[0].convolutional.padding, 1);
  EXPECT_EQ(model.layers[0].output.c, 8);
  EXPECT_EQ(model.layers[1].output.w, 16);
  EXPECT_EQ(model.layers[2].convolutional.activation, Activation::kLinear);
  EXPECT_EQ(model.layers[2].convolutional.padding, 0);  // pad=1 with size=1 is size/2 = 0
  EXPECT_EQ(model.layers[3].yolo.anchors.size(), 6u);
}

TEST(CfgParser, ErrorsNameFileLineAndProblem) {
  EXPECT_EQ(error_of("[convolutional]\nfilters=2\n"), "t.cfg: the first section must be [net]");
  EXPECT_EQ(error_of("[net]\nwidth=32\nheight=32\n[lstm]\n"), "t.cfg:4: [lstm] unsupported layer type");
  EXPECT_EQ(error_of("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=abc\n"),
            "t.cfg:5: [convolutional] filters=abc is not an integer");
  EXPECT_EQ(error_of("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=4\nactivation=mish\n"),
            "t.cfg:6: [convolutional] unsupported activation 'mish'");
  EXPECT_EQ(error_of("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=4\ndilation=2\n"),
            "t.cfg:6: [convolutional] unsupported key 'dilation'");
  EXPECT_EQ(error_of("[net]\nwidth=32\nheight=32\n[route]\nlayers=-3\n"),
            "t.cfg:4: [route] layer reference -3 is outside 0..-1");
  EXPECT_EQ(error_of("[net]\nwidth=32\n[convolutional\n"), "t.cfg:3: unterminated section header");
  EXPECT_EQ(error_of("[net]\nwidth\n"), "t.cfg:2: expected key=value, got 'width'");
  EXPECT_EQ(error_of("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=18\nsize=1\n"
                     "[yolo]\nmask=0,1,7\nanchors=1,2,3,4\nnum=2\nclasses=1\n"),
            "t.cfg:7: [yolo] mask index 7 >= num 2");
  EXPECT_EQ(error_of("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=16\nsize=1\n"
                     "[yolo]\nmask=0,1\nanchors=1,2,3,4\nnum=2\nclasses=4\n"),
            "t.cfg:7: [yolo] input has 16 channels, mask and classes need 18");
  EXPECT_EQ(error_of("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=18\nsize=1\n"), "t.cfg: no [yolo] layer");
  EXPECT_EQ(error_of("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=4\nsize=64\n"),
            "t.cfg:4: [convolutional] output size 4x-31x-31 is empty");
}

TEST(CfgParser, MissingFileIsNotFound) {
  try {
    parse_cfg_file("/nonexistent/x.cfg");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

}  // namespace
}  // namespace clouddetect::darknet
