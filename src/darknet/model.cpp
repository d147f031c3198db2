#include "darknet/model.h"

namespace clouddetect::darknet {

const char* to_string(LayerType type) {
  switch (type) {
    case LayerType::kConvolutional:
      return "convolutional";
    case LayerType::kMaxpool:
      return "maxpool";
    case LayerType::kUpsample:
      return "upsample";
    case LayerType::kRoute:
      return "route";
    case LayerType::kShortcut:
      return "shortcut";
    case LayerType::kDropout:
      return "dropout";
    case LayerType::kYolo:
      return "yolo";
  }
  return "?";
}

const char* to_string(Activation activation) {
  switch (activation) {
    case Activation::kLinear:
      return "linear";
    case Activation::kLeaky:
      return "leaky";
    case Activation::kRelu:
      return "relu";
    case Activation::kLogistic:
      return "logistic";
    case Activation::kMish:
      return "mish";
  }
  return "?";
}

std::vector<int> Model::yolo_layers() const {
  std::vector<int> indices;
  for (const Layer& layer : layers) {
    if (layer.type == LayerType::kYolo) indices.push_back(layer.index);
  }
  return indices;
}

int Model::num_classes() const {
  for (const Layer& layer : layers) {
    if (layer.type == LayerType::kYolo) return layer.yolo.classes;
  }
  return 0;
}

}  // namespace clouddetect::darknet
