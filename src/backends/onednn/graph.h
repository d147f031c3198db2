// What the native engine decides about a network before it emits a single primitive: who reads
// each output, which outputs share storage, and what fuses with what. A pure function of the
// model's layers and shapes, the mode and the activation layout's channel block, so each rule
// can be tested on the cfgs alone (graph_test.cpp).
#pragma once

#include <vector>

#include "darknet/model.h"

namespace clouddetect::onednn {

// kCalibrate: fp32, every layer's own output kept and measured (no fusion, no shared storage).
enum class Mode { kFp32, kInt8, kCalibrate };

struct GraphAnalysis {
  // Per layer: the layers that read its output, in order.
  std::vector<std::vector<int>> readers;
  // Per layer: the layer whose buffer holds its output. [dropout], [yolo] and a [route] of one
  // whole layer alias their input; every other layer is its own storage.
  std::vector<int> storage;
  // Per storage: the last layer reading it (the layer count when a head copy reads it), -1 if none.
  std::vector<int> last_read;
  // Per storage: read by a [yolo] head.
  std::vector<bool> feeds_head;
  // Per [convolutional]: the [shortcut] that may run inside it, -1 if none. It is reached through
  // dropouts only, the sole reader of the convolution's output, and the last reader of its `from`
  // storage, which the convolution then accumulates into. Never in kCalibrate; in kInt8 only after
  // a linear convolution. Whether it does depends on the kernel the convolution gets
  // (fused_shortcut_fits).
  std::vector<int> shortcut_of;
  // fp32 only, per layer: the [route] whose output this layer writes a channel range of, in place
  // (the route concatenates whole outputs of convolutions without fused shortcut or upsamples, each
  // with whole channel blocks); for such a route, itself. -1 otherwise.
  std::vector<int> route_in_place;
  // fp32 only, per [convolutional]: the 2x2 stride-2 [maxpool] after it may run inside it (it is the
  // only reader; the convolution writes a plain output of its own: no fused shortcut, head or route
  // view). Whether it does depends on the kernel the convolution gets (make_convolutional_pooled).
  std::vector<bool> pool_after;
};

// The layers whose outputs `layer` reads.
std::vector<int> inputs_of(const darknet::Layer& layer);

// `channel_block`: of the fp32 activation layout (16 for nChw16c, 8 for nChw8c).
GraphAnalysis analyse_graph(const darknet::Model& model, Mode mode, int channel_block);

}  // namespace clouddetect::onednn
