// A Darknet network as read from its .cfg and .weights: typed layers with their shapes and
// weights, cfg key names kept. Immutable once loaded and shared by every worker as
// std::shared_ptr<const Model>. Knows nothing of backends or HTTP.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace clouddetect::darknet {

enum class LayerType { kConvolutional, kMaxpool, kUpsample, kRoute, kShortcut, kDropout, kYolo };
enum class Activation { kLinear, kLeaky, kRelu, kLogistic, kMish };

const char* to_string(LayerType type);
const char* to_string(Activation activation);

struct Shape {
  int c = 0, h = 0, w = 0;
  long size() const { return static_cast<long>(c) * h * w; }
};

struct ConvolutionalParams {
  int filters = 1;
  int size = 1;
  int stride = 1;
  int padding = 0;  // pixels added on each side (darknet: pad=1 means size/2)
  int groups = 1;
  bool batch_normalize = false;
  Activation activation = Activation::kLogistic;
};

// darknet maxpool: out = (in + padding - size) / stride + 1, window starts at -padding/2, cells
// outside the input count as -inf. yolov3-tiny's size=2 stride=1 pool pads right/bottom only.
struct MaxpoolParams {
  int size = 1;
  int stride = 1;
  int padding = 0;  // total, as darknet's "padding" key (default size - 1)
};

struct RouteParams {
  std::vector<int> layers;  // absolute layer indices, concatenated along channels
  int groups = 1;           // each input is split into `groups` channel groups...
  int group_id = 0;         // ...and only group `group_id` is taken
};

// darknet's shortcut adds the channels both inputs have (the first min(c) of each) and keeps the
// previous layer's shape: a "partial residual" when `from` has more or fewer channels.
struct ShortcutParams {
  int from = 0;  // absolute layer index added to the previous layer's output
  Activation activation = Activation::kLinear;
};

struct YoloParams {
  std::vector<int> mask;       // anchors used by this head
  std::vector<float> anchors;  // all anchors of the network, w,h pairs in input pixels
  int classes = 0;
  int num = 0;  // total number of anchors
  float scale_x_y = 1.0f;
};

// Darknet stores these per conv layer in this order in the .weights file.
struct ConvolutionalWeights {
  std::vector<float> biases;            // [filters]
  std::vector<float> scales;            // [filters] batch-norm gamma (empty without batch norm)
  std::vector<float> rolling_mean;      // [filters] (empty without batch norm)
  std::vector<float> rolling_variance;  // [filters] (empty without batch norm)
  std::vector<float> weights;           // [filters][channels / groups][size][size]
};

struct Layer {
  LayerType type = LayerType::kDropout;
  int index = 0;  // position in the network, as route/shortcut count them
  int line = 0;   // cfg line of the [section] header, for error messages
  Shape input;
  Shape output;
  ConvolutionalParams convolutional;
  ConvolutionalWeights weights;
  MaxpoolParams maxpool;
  int upsample_stride = 2;
  RouteParams route;
  ShortcutParams shortcut;
  YoloParams yolo;
};

struct Model {
  std::string name;  // file stem of the cfg, e.g. "yolov3-tiny"
  std::string cfg_path;
  std::string cfg_text;  // kept for backends that import the cfg themselves (OpenCV)
  int width = 416;
  int height = 416;
  int channels = 3;
  bool letter_box = false;  // [net] letter_box: the model was trained on letterboxed images
  std::vector<Layer> layers;
  std::vector<std::string> class_names;

  // Indices of the [yolo] layers, in cfg order; head i is the output of layers[yolo_layers()[i] - 1].
  std::vector<int> yolo_layers() const;
  int num_classes() const;
};

}  // namespace clouddetect::darknet
