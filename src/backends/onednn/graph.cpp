#include "backends/onednn/graph.h"

#include <algorithm>

namespace clouddetect::onednn {

using darknet::LayerType;

std::vector<int> inputs_of(const darknet::Layer& layer) {
  switch (layer.type) {
    case LayerType::kRoute:
      return layer.route.layers;
    case LayerType::kShortcut:
      return {layer.index - 1, layer.shortcut.from};
    default:
      return layer.index == 0 ? std::vector<int>{} : std::vector<int>{layer.index - 1};
  }
}

namespace {

bool is_alias(const darknet::Layer& layer) {
  return layer.type == LayerType::kDropout || layer.type == LayerType::kYolo ||
         (layer.type == LayerType::kRoute && layer.route.layers.size() == 1 && layer.route.groups == 1);
}

// readers, storage, last_read and feeds_head.
void find_storage(const darknet::Model& model, GraphAnalysis& graph) {
  const int n = static_cast<int>(model.layers.size());
  graph.readers.assign(n, {});
  graph.storage.assign(n, 0);
  graph.last_read.assign(n, -1);
  graph.feeds_head.assign(n, false);
  for (const darknet::Layer& layer : model.layers) {
    for (int input : inputs_of(layer)) graph.readers.at(input).push_back(layer.index);
    graph.storage[layer.index] = is_alias(layer) && layer.index > 0 ? graph.storage[inputs_of(layer)[0]] : layer.index;
  }
  for (const darknet::Layer& layer : model.layers) {
    for (int input : inputs_of(layer)) {
      int& last = graph.last_read[graph.storage[input]];
      last = std::max(last, layer.index);
    }
  }
  for (int yolo : model.yolo_layers()) {
    graph.last_read[graph.storage[yolo - 1]] = n;  // read by the head copy
    graph.feeds_head[graph.storage[yolo - 1]] = true;
  }
}

int fusable_shortcut(const darknet::Model& model, const GraphAnalysis& graph, int conv, Mode mode) {
  const auto& layers = model.layers;
  int k = conv;
  while (true) {
    if (graph.readers[k].size() != 1 || graph.readers[k][0] != k + 1) return -1;
    ++k;
    if (layers[k].type == LayerType::kShortcut) break;
    if (layers[k].type != LayerType::kDropout) return -1;
  }
  const int from = layers[k].shortcut.from;
  if (layers[from].output.c != layers[conv].output.c) return -1;  // a partial shortcut adds part of `from`
  // oneDNN 2.6 has no kernel but its reference one (ref:any, 1000x slower: 50 s for a 13x13x512 3x3
  // layer) for a convolution with an activation before the sum (yolov3's and yolov4's leaky/mish
  // residual blocks, yolov3-tiny-prn's). In int8 such a shortcut stays a separate step; in fp32 our
  // Winograd adds it, and where oneDNN runs the layer the emitter keeps it separate
  // (fused_shortcut_fits).
  if (mode != Mode::kFp32 && layers[conv].convolutional.activation != darknet::Activation::kLinear) return -1;
  // The convolution must not read the storage it accumulates into.
  if (from >= conv || (conv > 0 && graph.storage[conv - 1] == graph.storage[from])) return -1;
  return graph.last_read[graph.storage[from]] == k ? k : -1;
}

bool writes_route_part(const darknet::Model& model, const GraphAnalysis& graph, const std::vector<int>& parts, int part,
                       int channel_block) {
  const darknet::Layer& producer = model.layers.at(part);
  return graph.storage[part] == part && graph.route_in_place[part] < 0 && !graph.feeds_head[part] &&
         std::count(parts.begin(), parts.end(), part) == 1 && channel_block > 1 &&
         producer.output.c % channel_block == 0 &&
         ((producer.type == LayerType::kConvolutional && graph.shortcut_of[part] < 0) ||
          producer.type == LayerType::kUpsample);
}

void find_routes_in_place(const darknet::Model& model, GraphAnalysis& graph, int channel_block) {
  for (const darknet::Layer& layer : model.layers) {
    const auto& parts = layer.route.layers;
    if (layer.type != LayerType::kRoute || layer.route.groups != 1 || parts.size() < 2) continue;
    const bool fits = std::all_of(parts.begin(), parts.end(), [&](int part) {
      return writes_route_part(model, graph, parts, part, channel_block);
    });
    if (!fits) continue;
    for (int part : parts) graph.route_in_place[part] = layer.index;
    graph.route_in_place[layer.index] = layer.index;
  }
}

bool pools_after(const darknet::Model& model, const GraphAnalysis& graph, int conv) {
  if (conv + 1 >= static_cast<int>(model.layers.size())) return false;
  const darknet::Layer& pool = model.layers[conv + 1];
  return pool.type == LayerType::kMaxpool && pool.maxpool.size == 2 && pool.maxpool.stride == 2 &&
         pool.input.h % 2 == 0 && pool.input.w % 2 == 0 && pool.output.h == pool.input.h / 2 &&
         pool.output.w == pool.input.w / 2 && graph.readers[conv] == std::vector<int>{conv + 1} &&
         !graph.feeds_head[conv] && graph.shortcut_of[conv] < 0 && graph.route_in_place[conv] < 0;
}

}  // namespace

GraphAnalysis analyse_graph(const darknet::Model& model, Mode mode, int channel_block) {
  const int n = static_cast<int>(model.layers.size());
  GraphAnalysis graph;
  find_storage(model, graph);
  graph.shortcut_of.assign(n, -1);
  graph.route_in_place.assign(n, -1);
  graph.pool_after.assign(n, false);
  if (mode != Mode::kCalibrate) {
    for (const darknet::Layer& layer : model.layers) {
      if (layer.type == LayerType::kConvolutional) {
        graph.shortcut_of[layer.index] = fusable_shortcut(model, graph, layer.index, mode);
      }
    }
  }
  if (mode != Mode::kFp32) return graph;
  find_routes_in_place(model, graph, channel_block);
  for (const darknet::Layer& layer : model.layers) {
    if (layer.type == LayerType::kConvolutional) graph.pool_after[layer.index] = pools_after(model, graph, layer.index);
  }
  return graph;
}

}  // namespace clouddetect::onednn
