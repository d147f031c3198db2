// How far one backend's raw [yolo] heads are from another's on the same input: a much finer signal
// than mAP (int8 against fp32, or one range rule against another), used by bench and calibrate.
#pragma once

#include <cmath>
#include <vector>

#include "core/types.h"

namespace clouddetect::eval {

// Relative L2 error of `heads` against `reference`, over all heads together (0 when both are zero).
inline double relative_head_error(const std::vector<Tensor>& heads, const std::vector<Tensor>& reference) {
  double diff = 0, norm = 0;
  for (std::size_t h = 0; h < reference.size(); ++h) {
    for (std::size_t k = 0; k < reference[h].data.size(); ++k) {
      const double d = static_cast<double>(heads[h].data[k]) - reference[h].data[k];
      diff += d * d;
      norm += static_cast<double>(reference[h].data[k]) * reference[h].data[k];
    }
  }
  return norm > 0 ? std::sqrt(diff / norm) : 0.0;
}

}  // namespace clouddetect::eval
