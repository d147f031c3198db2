#include "image/letterbox.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "core/error.h"

namespace clouddetect::image {

ResizeMode parse_resize_mode(const std::string& name) {
  if (name == "stretch") return ResizeMode::kStretch;
  if (name == "letterbox") return ResizeMode::kLetterbox;
  throw Error(ErrorCode::kInvalidArgument, "unknown resize mode '" + name + "' (stretch, letterbox)");
}

const char* to_string(ResizeMode mode) { return mode == ResizeMode::kStretch ? "stretch" : "letterbox"; }

LetterboxTransform LetterboxTransform::make(int image_width, int image_height, int input_width, int input_height,
                                            ResizeMode mode) {
  LetterboxTransform t;
  t.image_width = image_width;
  t.image_height = image_height;
  t.input_width = input_width;
  t.input_height = input_height;
  if (mode == ResizeMode::kStretch) {
    t.scale_x = static_cast<float>(input_width) / image_width;
    t.scale_y = static_cast<float>(input_height) / image_height;
    return t;
  }
  // darknet letterbox_image: the longer side fills the input, sizes truncated to integers.
  int new_w = input_width, new_h = input_height;
  if (static_cast<float>(input_width) / image_width < static_cast<float>(input_height) / image_height) {
    new_h = std::max(1, image_height * input_width / image_width);
  } else {
    new_w = std::max(1, image_width * input_height / image_height);
  }
  t.scale_x = static_cast<float>(new_w) / image_width;
  t.scale_y = static_cast<float>(new_h) / image_height;
  t.offset_x = static_cast<float>((input_width - new_w) / 2);
  t.offset_y = static_cast<float>((input_height - new_h) / 2);
  return t;
}

Box LetterboxTransform::to_original(const Box& normalized) const {
  float x0 = (normalized.x * input_width - offset_x) / scale_x;
  float y0 = (normalized.y * input_height - offset_y) / scale_y;
  float x1 = x0 + normalized.w * input_width / scale_x;
  float y1 = y0 + normalized.h * input_height / scale_y;
  x0 = std::clamp(x0, 0.0f, static_cast<float>(image_width));
  y0 = std::clamp(y0, 0.0f, static_cast<float>(image_height));
  x1 = std::clamp(x1, 0.0f, static_cast<float>(image_width));
  y1 = std::clamp(y1, 0.0f, static_cast<float>(image_height));
  return Box{x0, y0, x1 - x0, y1 - y0};
}

Preprocessor::Preprocessor(int input_width, int input_height, ResizeMode mode)
    : input_width_(input_width), input_height_(input_height), mode_(mode) {}

LetterboxTransform Preprocessor::run(const cv::Mat& bgr, Tensor& tensor) {
  if (bgr.empty() || bgr.type() != CV_8UC3) {
    throw Error(ErrorCode::kInternal, "preprocess expects a non-empty 8-bit BGR image");
  }
  auto transform = LetterboxTransform::make(bgr.cols, bgr.rows, input_width_, input_height_, mode_);
  tensor.reshape({1, 3, input_height_, input_width_});
  const std::size_t plane = static_cast<std::size_t>(input_width_) * input_height_;
  float* red = tensor.data.data();
  float* green = red + plane;
  float* blue = green + plane;

  int new_w = static_cast<int>(std::lround(transform.scale_x * bgr.cols));
  int new_h = static_cast<int>(std::lround(transform.scale_y * bgr.rows));
  int off_x = static_cast<int>(transform.offset_x), off_y = static_cast<int>(transform.offset_y);
  cv::resize(bgr, resized_, cv::Size(new_w, new_h), 0, 0, cv::INTER_LINEAR);
  if (new_w != input_width_ || new_h != input_height_) {
    std::fill(tensor.data.begin(), tensor.data.end(), 0.5f);  // darknet's grey canvas
  }
  constexpr float kScale = 1.0f / 255.0f;
  for (int y = 0; y < new_h; ++y) {
    const unsigned char* row = resized_.ptr<unsigned char>(y);
    std::size_t base = static_cast<std::size_t>(y + off_y) * input_width_ + off_x;
    for (int x = 0; x < new_w; ++x) {
      blue[base + x] = row[3 * x] * kScale;
      green[base + x] = row[3 * x + 1] * kScale;
      red[base + x] = row[3 * x + 2] * kScale;
    }
  }
  return transform;
}

}  // namespace clouddetect::image
