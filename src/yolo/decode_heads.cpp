#include "yolo/decode_heads.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace clouddetect::yolo {
namespace {

inline float logistic(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace

Box get_yolo_box(const float* head, int anchor, int col, int row, int cells, const darknet::YoloParams& p, int grid_w,
                 int grid_h, int input_w, int input_h) {
  // head points at this anchor's first channel; channel k of cell is head[k * cells + cell].
  const int cell = row * grid_w + col;
  const float s = p.scale_x_y;
  float cx = (col + logistic(head[0 * cells + cell]) * s - (s - 1) / 2) / grid_w;
  float cy = (row + logistic(head[1 * cells + cell]) * s - (s - 1) / 2) / grid_h;
  float w = std::exp(head[2 * cells + cell]) * p.anchors[2 * p.mask[anchor]] / input_w;
  float h = std::exp(head[3 * cells + cell]) * p.anchors[2 * p.mask[anchor] + 1] / input_h;
  return Box{cx - w / 2, cy - h / 2, w, h};
}

void decode_heads(const darknet::Model& model, const std::vector<Tensor>& heads, float score_threshold,
                  std::vector<Candidate>& out) {
  const std::vector<int> yolo_layers = model.yolo_layers();
  if (heads.size() != yolo_layers.size()) {
    throw Error(ErrorCode::kInternal, "backend returned " + std::to_string(heads.size()) + " heads, model has " +
                                          std::to_string(yolo_layers.size()));
  }
  for (std::size_t h = 0; h < heads.size(); ++h) {
    const darknet::Layer& layer = model.layers[yolo_layers[h]];
    const darknet::YoloParams& p = layer.yolo;
    const Tensor& head = heads[h];
    const int grid_h = layer.input.h, grid_w = layer.input.w;
    const int cells = grid_h * grid_w;
    const int entries = 5 + p.classes;
    if (head.size() != static_cast<std::size_t>(layer.input.size())) {
      throw Error(ErrorCode::kInternal, "head " + std::to_string(h) + " has the wrong size");
    }
    for (std::size_t a = 0; a < p.mask.size(); ++a) {
      const float* anchor_data = head.data.data() + a * entries * cells;
      for (int cell = 0; cell < cells; ++cell) {
        float objectness = logistic(anchor_data[4 * cells + cell]);
        if (objectness <= score_threshold) continue;  // as darknet: cheap early exit
        int best_class = 0;
        float best_logit = anchor_data[5 * cells + cell];
        for (int c = 1; c < p.classes; ++c) {
          float logit = anchor_data[(5 + c) * cells + cell];
          if (logit > best_logit) {
            best_logit = logit;
            best_class = c;
          }
        }
        float score = objectness * logistic(best_logit);
        if (score <= score_threshold) continue;
        out.push_back(Candidate{best_class, score,
                                get_yolo_box(anchor_data, static_cast<int>(a), cell % grid_w, cell / grid_w, cells, p,
                                             grid_w, grid_h, model.width, model.height)});
      }
    }
  }
}

}  // namespace clouddetect::yolo
