#include "image/letterbox.h"

#include <gtest/gtest.h>

namespace clouddetect::image {
namespace {

TEST(Letterbox, GeometryMatchesDarknet) {
  auto t = LetterboxTransform::make(640, 480, 416, 416, ResizeMode::kLetterbox);
  EXPECT_FLOAT_EQ(t.scale_x, 0.65f);
  EXPECT_FLOAT_EQ(t.scale_y, 0.65f);
  EXPECT_FLOAT_EQ(t.offset_x, 0.0f);
  EXPECT_FLOAT_EQ(t.offset_y, 52.0f);  // (416 - 312) / 2
  // The centre of the input is the centre of the image.
  Box b = t.to_original(Box{0.25f, 0.25f, 0.5f, 0.5f});
  EXPECT_NEAR(b.x + b.w / 2, 320.0f, 1e-3);
  EXPECT_NEAR(b.y + b.h / 2, 240.0f, 1e-3);
  EXPECT_NEAR(b.w, 320.0f, 1e-3);
}

TEST(Letterbox, StretchMapsCornersToCorners) {
  auto t = LetterboxTransform::make(640, 480, 320, 320, ResizeMode::kStretch);
  Box b = t.to_original(Box{0, 0, 1, 1});
  EXPECT_FLOAT_EQ(b.w, 640.0f);
  EXPECT_FLOAT_EQ(b.h, 480.0f);
}

TEST(Letterbox, ClipsToTheImage) {
  auto t = LetterboxTransform::make(100, 50, 64, 64, ResizeMode::kStretch);
  Box b = t.to_original(Box{-0.5f, 0.5f, 1.0f, 1.0f});
  EXPECT_FLOAT_EQ(b.x, 0.0f);
  EXPECT_FLOAT_EQ(b.w, 50.0f);
  EXPECT_FLOAT_EQ(b.y, 25.0f);
  EXPECT_FLOAT_EQ(b.h, 25.0f);
}

TEST(Preprocessor, FillsRgbPlanesAndGreyBorders) {
  cv::Mat red(20, 40, CV_8UC3, cv::Scalar(0, 0, 255));  // BGR
  Tensor tensor;
  Preprocessor letterbox(32, 32, ResizeMode::kLetterbox);
  auto t = letterbox.run(red, tensor);
  ASSERT_EQ(tensor.shape, (std::vector<int>{1, 3, 32, 32}));
  EXPECT_FLOAT_EQ(t.offset_y, 8.0f);
  const std::size_t plane = 32 * 32;
  EXPECT_FLOAT_EQ(tensor.data[0], 0.5f);                        // top border, red plane
  EXPECT_FLOAT_EQ(tensor.data[16 * 32 + 5], 1.0f);              // inside, red
  EXPECT_FLOAT_EQ(tensor.data[plane + 16 * 32 + 5], 0.0f);      // green
  EXPECT_FLOAT_EQ(tensor.data[2 * plane + 16 * 32 + 5], 0.0f);  // blue

  Preprocessor stretch(32, 32, ResizeMode::kStretch);
  stretch.run(red, tensor);
  EXPECT_FLOAT_EQ(tensor.data[0], 1.0f);
}

}  // namespace
}  // namespace clouddetect::image
