// Whole network: the native backend's raw [yolo] heads against the OpenCV backend's, on real
// coco128 images. Criterion: ||native - opencv|| / ||opencv|| < 1e-4 for every head.
#include <gtest/gtest.h>

#include <cmath>

#include <opencv2/imgcodecs.hpp>

#include "../tests/shared_data.h"
#include "backends/backend.h"
#include "backends/onednn/onednn_backend.h"
#include "backends/onednn/test_models.h"
#include "image/letterbox.h"

namespace clouddetect {
namespace {

constexpr double kMaxRelativeError = 1e-4;

double relative_error(const Tensor& a, const Tensor& b) {
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < b.data.size(); ++i) {
    diff += (static_cast<double>(a.data[i]) - b.data[i]) * (static_cast<double>(a.data[i]) - b.data[i]);
    norm += static_cast<double>(b.data[i]) * b.data[i];
  }
  return std::sqrt(diff / norm);
}

Tensor preprocess(const darknet::Model& model, const std::string& stem) {
  cv::Mat bgr = cv::imread(testing::coco_image(stem), cv::IMREAD_COLOR);
  EXPECT_FALSE(bgr.empty()) << stem;
  image::Preprocessor preprocessor(model.width, model.height,
                                   model.letter_box ? image::ResizeMode::kLetterbox : image::ResizeMode::kStretch);
  Tensor input;
  preprocessor.run(bgr, input);
  return input;
}

class NativeParityTest : public ::testing::TestWithParam<const char*> {};

TEST_P(NativeParityTest, HeadsMatchOpenCv) {
  auto model = onednn::testing::load_test_model(testing::model_dir(GetParam()));
  auto reference = create_backend("opencv", model, BackendOptions{});
  auto native = make_onednn_backend(model, BackendOptions{});
  std::vector<Tensor> expected, actual;
  for (const char* stem : {"000000000009", "000000000025", "000000000036"}) {
    Tensor input = preprocess(*model, stem);
    reference->forward(input, expected);
    native->forward(input, actual);
    ASSERT_EQ(actual.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(actual[i].shape, expected[i].shape) << "head " << i;
      const double error = relative_error(actual[i], expected[i]);
      std::printf("%s %s head %zu: relative error %.3g\n", GetParam(), stem, i, error);
      EXPECT_LT(error, kMaxRelativeError) << GetParam() << " " << stem << " head " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, NativeParityTest,
                         ::testing::Values("yolov3-tiny", "yolo-fastest-1.1", "yolo-fastest-1.1-xl"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           std::string name = param_info.param;
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

// Instances share the prepared weights but nothing mutable: interleaved runs, with a different
// thread count, give bit-identical heads.
TEST(NativeParityTest, InstancesAreIndependent) {
  auto model = darknet::load_model(testing::model_dir("yolo-fastest-1.1"));
  BackendOptions two_threads;
  two_threads.threads = 2;
  auto first = make_onednn_backend(model, BackendOptions{});
  auto second = make_onednn_backend(model, two_threads);
  Tensor a = preprocess(*model, "000000000009"), b = preprocess(*model, "000000000025");
  std::vector<Tensor> first_a, second_b, first_b;
  first->forward(a, first_a);
  second->forward(b, second_b);
  first->forward(b, first_b);
  ASSERT_EQ(first_b.size(), second_b.size());
  for (std::size_t i = 0; i < first_b.size(); ++i) {
    EXPECT_LT(relative_error(first_b[i], second_b[i]), 1e-6);
  }
}

}  // namespace
}  // namespace clouddetect
