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

// The six cfgs of more-cfgs parse, with what they add over yolov3-tiny.
TEST(CfgParser, ParsesMoreCfgs) {
  const std::string dir = model_dir("more-cfgs") + "/";
  Model prn = parse_cfg_file(dir + "yolov3-tiny-prn.cfg");
  // Partial residual: layer 22 adds the first 128 of layer 8's 256 channels to the upsample's 128.
  EXPECT_EQ(prn.layers[22].type, LayerType::kShortcut);
  EXPECT_EQ(prn.layers[22].shortcut.from, 8);
  EXPECT_EQ(prn.layers[8].output.c, 256);
  EXPECT_EQ(prn.layers[22].output.c, 128);
  EXPECT_EQ(prn.layers[22].shortcut.activation, Activation::kLeaky);
  Model v4 = parse_cfg_file(dir + "yolov4.cfg");
  EXPECT_EQ(v4.layers[0].convolutional.activation, Activation::kMish);
  EXPECT_EQ(v4.layers.size(), 162u);
  int spp_pools = 0, four_way_routes = 0;
  for (const Layer& layer : v4.layers) {
    spp_pools += layer.type == LayerType::kMaxpool && layer.maxpool.stride == 1;
    four_way_routes += layer.type == LayerType::kRoute && layer.route.layers.size() == 4;
  }
  EXPECT_EQ(spp_pools, 3);
  EXPECT_EQ(four_way_routes, 1);
  std::vector<float> scales;
  for (int head : v4.yolo_layers()) scales.push_back(v4.layers[head].yolo.scale_x_y);
  EXPECT_EQ(scales, (std::vector<float>{1.2f, 1.1f, 1.05f}));
  Model tiny = parse_cfg_file(dir + "yolov4-tiny.cfg");
  EXPECT_EQ(tiny.layers[3].route.groups, 2);
  EXPECT_EQ(tiny.layers[3].route.group_id, 1);
  EXPECT_EQ(tiny.layers[3].output.c, tiny.layers[2].output.c / 2);
  for (const char* name : {"yolov4-tiny-3l", "yolov3", "yolov3-spp"})
    EXPECT_NO_THROW(parse_cfg_file(dir + name + ".cfg"));
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
  EXPECT_EQ(error_of("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=4\nactivation=swish\n"),
            "t.cfg:6: [convolutional] unsupported activation 'swish'");
  EXPECT_EQ(error_of("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=4\nsize=3\nstride=2\n[shortcut]\nfrom=0\n"
                     "[convolutional]\nfilters=4\nsize=3\nstride=2\n[shortcut]\nfrom=-3\n"),
            "t.cfg:14: [shortcut] shortcut from layer 0 has a different size (15x15 vs 7x7)");
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
