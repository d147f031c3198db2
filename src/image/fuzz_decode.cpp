// libFuzzer target for image decoding with limits: any bytes must decode to a BGR image within the
// pixel limit or throw clouddetect::Error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "image/decode.h"
#include "image/letterbox.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::int64_t kMaxPixels = 1 << 20;
  try {
    std::vector<unsigned char> bytes(data, data + size);
    cv::Mat image = clouddetect::image::decode(bytes, kMaxPixels);
    if (image.type() != CV_8UC3 || static_cast<std::int64_t>(image.cols) * image.rows > kMaxPixels) std::abort();
    clouddetect::Tensor tensor;
    clouddetect::image::Preprocessor(64, 64, clouddetect::image::ResizeMode::kLetterbox).run(image, tensor);
  } catch (const clouddetect::Error&) {
  }
  return 0;
}
