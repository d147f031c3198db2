// YOLO head decoding as darknet's yolo_layer.c does it, on the raw head tensors of any backend.
#pragma once

#include <vector>

#include "core/types.h"
#include "darknet/model.h"

namespace clouddetect::yolo {

// One candidate per anchor and cell whose best class scores above the threshold.
struct Candidate {
  int class_id = 0;
  float score = 0;  // objectness * class probability
  Box box;          // 0..1 of the network input, top-left corner
};

// darknet get_yolo_box: x = (col + sigmoid(tx)*s - (s-1)/2) / w, w = exp(tw) * anchor_w / input_w.
Box get_yolo_box(const float* head, int anchor, int col, int row, int cells, const darknet::YoloParams& p, int grid_w,
                 int grid_h, int input_w, int input_h);

// Appends the candidates of every head (heads[i] feeds model.yolo_layers()[i]) to `out`.
void decode_heads(const darknet::Model& model, const std::vector<Tensor>& heads, float score_threshold,
                  std::vector<Candidate>& out);

}  // namespace clouddetect::yolo
