// Decoding client-supplied image bytes with limits checked before any pixel is allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <opencv2/core/mat.hpp>
#include <optional>
#include <vector>

namespace clouddetect::image {

struct ImageSize {
  int width = 0;
  int height = 0;
  int components = 3;  // colour components stored: 1 grey, 3, or 4 (CMYK JPEG)
};

// Width and height read from a JPEG or PNG header (the formats decode() accepts), without
// decoding; nullopt for anything else or a truncated header.
std::optional<ImageSize> peek_size(const unsigned char* data, std::size_t size);

// The most bytes decode() holds at once for these bytes (the BGR pixels, and the CMYK pixels it
// converts from), read from the header; 0 when decode() would refuse them before allocating.
std::int64_t decode_peak_bytes(const unsigned char* data, std::size_t size);

// Decodes a JPEG (libjpeg-turbo) or PNG (libpng) to 8-bit BGR (grayscale, CMYK, alpha, 16-bit and
// palette images are converted). Other formats are refused: the API takes JPEG and PNG, and not
// linking OpenCV's imgcodecs (which pulls in GDAL) keeps the container image small.
// Throws Error{kPayloadTooLarge} when the header declares more than max_pixels,
// Error{kUnprocessable} when the bytes are not a decodable JPEG or PNG.
cv::Mat decode(const std::vector<unsigned char>& bytes, std::int64_t max_pixels);

}  // namespace clouddetect::image
