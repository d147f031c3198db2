#pragma once

#include <opencv2/core/mat.hpp>
#include <string>
#include <vector>

#include "core/types.h"

namespace clouddetect::image {

// Draws each detection's box and "label 0.97" on a copy of `bgr`.
cv::Mat annotate(const cv::Mat& bgr, const std::vector<Detection>& detections,
                 const std::vector<std::string>& class_names);

// JPEG bytes of `bgr` (quality 90).
std::string encode_jpeg(const cv::Mat& bgr);

}  // namespace clouddetect::image
