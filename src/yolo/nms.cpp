#include "yolo/nms.h"

#include <algorithm>

namespace clouddetect::yolo {

float iou(const Box& a, const Box& b) {
  float x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  float x1 = std::min(a.x + a.w, b.x + b.w), y1 = std::min(a.y + a.h, b.y + b.h);
  float intersection = std::max(0.0f, x1 - x0) * std::max(0.0f, y1 - y0);
  float uni = a.w * a.h + b.w * b.h - intersection;
  return uni > 0 ? intersection / uni : 0.0f;
}

void nms(std::vector<Candidate>& candidates, float iou_threshold) {
  std::stable_sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.class_id != b.class_id ? a.class_id < b.class_id : a.score > b.score;
  });
  std::vector<Candidate> kept;
  kept.reserve(candidates.size());
  std::size_t class_begin = 0;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (i > 0 && candidates[i].class_id != candidates[i - 1].class_id) class_begin = kept.size();
    bool suppressed = false;
    for (std::size_t k = class_begin; k < kept.size() && !suppressed; ++k) {
      suppressed = iou(kept[k].box, candidates[i].box) > iou_threshold;
    }
    if (!suppressed) kept.push_back(candidates[i]);
  }
  std::stable_sort(kept.begin(), kept.end(), [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  candidates.swap(kept);
}

}  // namespace clouddetect::yolo
