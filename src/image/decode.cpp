#include "image/decode.h"

#include <png.h>
#include <turbojpeg.h>

#include <cstring>
#include <memory>
#include <string>

#include "core/error.h"

namespace clouddetect::image {
namespace {

uint32_t be16(const unsigned char* p) { return (uint32_t{p[0]} << 8) | p[1]; }
uint32_t be32(const unsigned char* p) { return (be16(p) << 16) | be16(p + 2); }

std::optional<ImageSize> jpeg_size(const unsigned char* data, std::size_t size) {
  std::size_t i = 2;
  while (i + 4 <= size) {
    if (data[i] != 0xFF) return std::nullopt;
    unsigned char marker = data[i + 1];
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
      i += 2;
      continue;
    }
    uint32_t length = be16(data + i + 2);
    if (length < 2) return std::nullopt;
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
    if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
      if (i + 10 > size) return std::nullopt;
      return ImageSize{static_cast<int>(be16(data + i + 7)), static_cast<int>(be16(data + i + 5)), data[i + 9]};
    }
    i += 2 + length;
  }
  return std::nullopt;
}

}  // namespace

std::optional<ImageSize> peek_size(const unsigned char* data, std::size_t size) {
  if (size >= 4 && data[0] == 0xFF && data[1] == 0xD8) return jpeg_size(data, size);
  if (size >= 24 && std::memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0) {
    uint64_t w = be32(data + 16), h = be32(data + 20);
    if (w > INT32_MAX || h > INT32_MAX) return ImageSize{INT32_MAX, INT32_MAX};
    return ImageSize{static_cast<int>(w), static_cast<int>(h)};
  }
  return std::nullopt;
}

std::int64_t decode_peak_bytes(const unsigned char* data, std::size_t size) {
  const std::optional<ImageSize> header = peek_size(data, size);
  if (!header) return 0;
  const std::int64_t pixels = static_cast<std::int64_t>(header->width) * header->height;
  return pixels * (header->components == 4 ? 3 + 4 : 3);  // CMYK is decoded, then converted
}

namespace {

struct TurboJpegDeleter {
  void operator()(void* handle) const { tjDestroy(handle); }
};
using TurboJpeg = std::unique_ptr<void, TurboJpegDeleter>;

cv::Mat decode_jpeg(const std::vector<unsigned char>& bytes) {
  TurboJpeg handle(tjInitDecompress());
  if (!handle) throw Error(ErrorCode::kInternal, "cannot create a JPEG decoder");
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(handle.get(), bytes.data(), static_cast<unsigned long>(bytes.size()), &width, &height,
                          &subsampling, &colorspace) != 0) {
    throw Error(ErrorCode::kUnprocessable, std::string("JPEG cannot be decoded: ") + tjGetErrorStr2(handle.get()));
  }
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  cv::Mat pixels(height, width, cmyk ? CV_8UC4 : CV_8UC3);
  // A warning (e.g. a truncated scan, which libjpeg fills with grey) still gives an image, as
  // OpenCV's decoder does; only fatal errors are refused.
  if (tjDecompress2(handle.get(), bytes.data(), static_cast<unsigned long>(bytes.size()), pixels.data, width, 0, height,
                    cmyk ? TJPF_CMYK : TJPF_BGR, 0) != 0 &&
      tjGetErrorCode(handle.get()) == TJERR_FATAL) {
    throw Error(ErrorCode::kUnprocessable, std::string("JPEG cannot be decoded: ") + tjGetErrorStr2(handle.get()));
  }
  if (!cmyk) return pixels;
  // Adobe CMYK JPEGs store inverted ink values: with c' = 255 - C etc., R = c' * k' / 255.
  cv::Mat bgr(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    const unsigned char* in = pixels.ptr<unsigned char>(y);
    unsigned char* out = bgr.ptr<unsigned char>(y);
    for (int x = 0; x < width; ++x, in += 4, out += 3) {
      out[0] = static_cast<unsigned char>(in[2] * in[3] / 255);
      out[1] = static_cast<unsigned char>(in[1] * in[3] / 255);
      out[2] = static_cast<unsigned char>(in[0] * in[3] / 255);
    }
  }
  return bgr;
}

cv::Mat decode_png(const std::vector<unsigned char>& bytes) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    throw Error(ErrorCode::kUnprocessable, std::string("PNG cannot be decoded: ") + image.message);
  }
  // libpng converts palette, grey, 16-bit and alpha (composited on black) to 8-bit BGR.
  image.format = PNG_FORMAT_BGR;
  cv::Mat bgr(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC3);
  const png_color black{0, 0, 0};
  if (!png_image_finish_read(&image, &black, bgr.data, 0, nullptr)) {
    std::string message = image.message;
    png_image_free(&image);
    throw Error(ErrorCode::kUnprocessable, "PNG cannot be decoded: " + message);
  }
  return bgr;
}

}  // namespace

cv::Mat decode(const std::vector<unsigned char>& bytes, std::int64_t max_pixels) {
  if (bytes.empty()) throw Error(ErrorCode::kUnprocessable, "image is empty");
  const bool jpeg = bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
  const bool png = bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0;
  if (!jpeg && !png) {
    throw Error(ErrorCode::kUnprocessable,
                "image cannot be decoded: it is not a JPEG or PNG (the formats the API accepts)");
  }
  auto size = peek_size(bytes.data(), bytes.size());
  if (!size) throw Error(ErrorCode::kUnprocessable, "image cannot be decoded: its header is truncated or corrupt");
  std::int64_t pixels = static_cast<std::int64_t>(size->width) * size->height;
  if (pixels > max_pixels) {
    throw Error(ErrorCode::kPayloadTooLarge, "image is " + std::to_string(size->width) + "x" +
                                                 std::to_string(size->height) + " = " + std::to_string(pixels) +
                                                 " pixels, the limit is " + std::to_string(max_pixels));
  }
  if (pixels == 0) throw Error(ErrorCode::kUnprocessable, "image header declares zero pixels");
  cv::Mat decoded = jpeg ? decode_jpeg(bytes) : decode_png(bytes);
  if (static_cast<std::int64_t>(decoded.cols) * decoded.rows > max_pixels) {
    throw Error(ErrorCode::kPayloadTooLarge, "image has more than " + std::to_string(max_pixels) + " pixels");
  }
  return decoded;
}

}  // namespace clouddetect::image
