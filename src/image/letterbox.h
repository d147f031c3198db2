// Turns a decoded image into the network's input tensor, and maps boxes back.
#pragma once

#include <opencv2/core/mat.hpp>
#include <string>

#include "core/types.h"

namespace clouddetect::image {

enum class ResizeMode {
  kStretch,    // resize to the input size ignoring aspect ratio (cv::dnn::blobFromImage)
  kLetterbox,  // keep aspect ratio, centre on a grey (0.5) canvas (darknet letterbox_image)
};

ResizeMode parse_resize_mode(const std::string& name);  // "stretch" | "letterbox"
const char* to_string(ResizeMode mode);

// The geometry of one resize, computed once and used both ways.
struct LetterboxTransform {
  int image_width = 0, image_height = 0;
  int input_width = 0, input_height = 0;
  float scale_x = 1, scale_y = 1;    // input pixels per image pixel
  float offset_x = 0, offset_y = 0;  // where the image starts inside the input

  static LetterboxTransform make(int image_width, int image_height, int input_width, int input_height, ResizeMode mode);

  // box in 0..1 of the network input -> pixels of the original image, clipped to it.
  Box to_original(const Box& normalized) const;
};

// Reusable buffers: one per worker, so the hot path allocates nothing after the first image.
class Preprocessor {
 public:
  Preprocessor(int input_width, int input_height, ResizeMode mode);

  // bgr: 8-bit 3-channel image. Fills `tensor` as {1, 3, H, W} RGB in [0, 1].
  LetterboxTransform run(const cv::Mat& bgr, Tensor& tensor);

 private:
  int input_width_, input_height_;
  ResizeMode mode_;
  cv::Mat resized_;
};

}  // namespace clouddetect::image
