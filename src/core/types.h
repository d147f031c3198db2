// Plain value types shared by every module.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace clouddetect {

// A dense float tensor in NCHW order (batch is always 1 here).
struct Tensor {
  std::vector<int> shape;  // e.g. {1, 255, 13, 13}
  std::vector<float> data;

  std::size_t size() const {
    std::size_t n = 1;
    for (int d : shape) n *= static_cast<std::size_t>(d);
    return n;
  }
  void reshape(std::vector<int> new_shape) {
    shape = std::move(new_shape);
    data.resize(size());
  }
};

// An axis-aligned box; x, y is the top-left corner. Units depend on context (pixels or 0..1).
struct Box {
  float x = 0, y = 0, w = 0, h = 0;
};

struct Detection {
  int class_id = 0;
  float score = 0;  // objectness * class probability, in [0, 1]
  Box box;          // pixels of the original image, clipped to it
};

}  // namespace clouddetect
