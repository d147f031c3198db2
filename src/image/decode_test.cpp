#include "image/decode.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <opencv2/imgcodecs.hpp>

#include "../tests/shared_data.h"
#include "core/error.h"

namespace clouddetect::image {
namespace {

std::vector<unsigned char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<unsigned char> encode(const std::string& ext, const cv::Mat& image) {
  std::vector<unsigned char> bytes;
  EXPECT_TRUE(cv::imencode(ext, image, bytes));
  return bytes;
}

ErrorCode code_of(const std::vector<unsigned char>& bytes, std::int64_t max_pixels = 1 << 26) {
  try {
    decode(bytes, max_pixels);
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kInternal;
}

TEST(Decode, RealJpegHeaderMatchesDecodedSize) {
  auto bytes = read_file(clouddetect::testing::coco_image("000000000009"));
  ASSERT_FALSE(bytes.empty());
  auto size = peek_size(bytes.data(), bytes.size());
  ASSERT_TRUE(size);
  cv::Mat image = decode(bytes, 1 << 26);
  EXPECT_EQ(size->width, image.cols);
  EXPECT_EQ(size->height, image.rows);
  EXPECT_EQ(image.type(), CV_8UC3);
}

TEST(Decode, PeeksTheHeadersOfTheFormatsItDecodesOnly) {
  cv::Mat image(37, 53, CV_8UC3, cv::Scalar(10, 20, 30));
  for (const char* ext : {".png", ".jpg"}) {
    auto bytes = encode(ext, image);
    auto size = peek_size(bytes.data(), bytes.size());
    ASSERT_TRUE(size) << ext;
    EXPECT_EQ(size->width, 53) << ext;
    EXPECT_EQ(size->height, 37) << ext;
    EXPECT_EQ(decode_peak_bytes(bytes.data(), bytes.size()), 53 * 37 * 3) << ext;
  }
  for (const char* ext : {".bmp", ".webp"}) {  // refused by decode(): nothing to peek
    auto bytes = encode(ext, image);
    EXPECT_FALSE(peek_size(bytes.data(), bytes.size())) << ext;
    EXPECT_EQ(decode_peak_bytes(bytes.data(), bytes.size()), 0) << ext;
  }
  cv::Mat gray(37, 53, CV_8UC1, cv::Scalar(10));
  auto jpeg = encode(".jpg", gray);
  EXPECT_EQ(peek_size(jpeg.data(), jpeg.size())->components, 1);
}

TEST(Decode, ConvertsGrayAlphaAnd16BitToBgr8) {
  cv::Mat gray(8, 8, CV_8UC1, cv::Scalar(200));
  cv::Mat alpha(8, 8, CV_8UC4, cv::Scalar(1, 2, 3, 4));
  cv::Mat deep(8, 8, CV_16UC3, cv::Scalar(65535, 0, 0));
  for (const cv::Mat& source : {gray, alpha, deep}) {
    cv::Mat out = decode(encode(".png", source), 1000);
    EXPECT_EQ(out.type(), CV_8UC3);
    EXPECT_EQ(out.cols, 8);
  }
  EXPECT_EQ(decode(encode(".png", deep), 1000).at<cv::Vec3b>(0, 0)[0], 255);
}

TEST(Decode, RefusesTooManyPixelsBeforeDecoding) {
  cv::Mat image(100, 100, CV_8UC3, cv::Scalar(0));
  EXPECT_EQ(code_of(encode(".png", image), 9999), ErrorCode::kPayloadTooLarge);
  // A 20-byte PNG header that claims 100000 x 100000 pixels: refused from the header alone.
  std::vector<unsigned char> bomb = encode(".png", image);
  bomb[16] = 0;
  bomb[17] = 1;
  bomb[18] = 0x86;
  bomb[19] = 0xA0;
  bomb[20] = 0;
  bomb[21] = 1;
  bomb[22] = 0x86;
  bomb[23] = 0xA0;
  EXPECT_EQ(code_of(bomb), ErrorCode::kPayloadTooLarge);
}

TEST(Decode, RejectsWhatIsNotAnImage) {
  EXPECT_EQ(code_of({}), ErrorCode::kUnprocessable);
  std::string text = "hello, this is text";
  EXPECT_EQ(code_of({text.begin(), text.end()}), ErrorCode::kUnprocessable);
  auto jpeg = read_file(clouddetect::testing::coco_image("000000000009"));
  jpeg.resize(200);  // header intact, scan data gone
  ErrorCode truncated = code_of(jpeg);
  EXPECT_TRUE(truncated == ErrorCode::kUnprocessable || truncated == ErrorCode::kInternal);
}

}  // namespace
}  // namespace clouddetect::image
