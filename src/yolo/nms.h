#pragma once

#include <vector>

#include "yolo/decode_heads.h"

namespace clouddetect::yolo {

float iou(const Box& a, const Box& b);

// Per-class greedy NMS (darknet do_nms_sort): keeps the best-scoring box and drops any box of the
// same class overlapping it by more than iou_threshold. Result sorted by score, descending.
void nms(std::vector<Candidate>& candidates, float iou_threshold);

}  // namespace clouddetect::yolo
