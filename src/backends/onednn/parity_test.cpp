// Whole network: the native backend's raw [yolo] heads against the OpenCV backend's, on real
// coco128 images. Criterion: ||native - opencv|| / ||opencv|| < 1e-4 for every head.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <oneapi/dnnl/dnnl.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sstream>

#include "../tests/more_cfgs.h"
#include "../tests/shared_data.h"
#include "backends/backend.h"
#include "backends/onednn/kernels/lanes.h"
#include "backends/onednn/onednn_backend.h"
#include "backends/onednn/test_models.h"
#include "core/error.h"
#include "darknet/weights_reader.h"
#include "eval/head_error.h"
#include "image/letterbox.h"

namespace clouddetect {
namespace {

constexpr double kMaxRelativeError = 1e-4;

Tensor preprocess(const darknet::Model& model, const std::string& stem) {
  cv::Mat bgr = cv::imread(testing::coco_image(stem), cv::IMREAD_COLOR);
  EXPECT_FALSE(bgr.empty()) << stem;
  image::Preprocessor preprocessor(model.width, model.height,
                                   model.letter_box ? image::ResizeMode::kLetterbox : image::ResizeMode::kStretch);
  Tensor input;
  preprocessor.run(bgr, input);
  return input;
}

// oneDNN falls back to its reference kernels ("ref:any", 10-100x slower) for a combination it has
// no optimised kernel for, e.g. mixed 8- and 16-channel blocked layouts; nothing would fail but speed.
void expect_no_reference_kernels(const Backend& backend) {
  const std::vector<std::string> kernels = backend.kernels();
  EXPECT_FALSE(kernels.empty());
  for (const std::string& kernel : kernels) EXPECT_EQ(kernel.rfind("ref", 0), std::string::npos) << kernel;
}

void expect_heads_match_opencv(const std::shared_ptr<const darknet::Model>& model, const char* name) {
  auto reference = create_backend("opencv", model, BackendOptions{});
  auto native = make_onednn_backend(model, BackendOptions{});
  expect_no_reference_kernels(*native);
  std::vector<Tensor> expected, actual;
  for (const char* stem : {"000000000009", "000000000025", "000000000036"}) {
    Tensor input = preprocess(*model, stem);
    reference->forward(input, expected);
    native->forward(input, actual);
    ASSERT_EQ(actual.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(actual[i].shape, expected[i].shape) << "head " << i;
      const double error = eval::relative_head_error({actual[i]}, {expected[i]});
      std::printf("%s %s head %zu: relative error %.3g\n", name, stem, i, error);
      EXPECT_LT(error, kMaxRelativeError) << name << " " << stem << " head " << i;
    }
  }
}

class NativeParityTest : public ::testing::TestWithParam<const char*> {};

TEST_P(NativeParityTest, HeadsMatchOpenCv) {
  expect_heads_match_opencv(onednn::testing::load_test_model(testing::model_dir(GetParam())), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Models, NativeParityTest,
                         ::testing::Values("yolov3-tiny", "yolo-fastest-1.1", "yolo-fastest-1.1-xl"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           std::string name = param_info.param;
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

// The cfgs of more-cfgs (synthetic weights; the full-size ones at a small input size, see
// tests/more_cfgs.h): mish, SPP pools, routes of 3-4 layers and of channel groups, partial shortcuts.
class MoreCfgsParityTest : public ::testing::TestWithParam<testing::MoreCfg> {};

TEST_P(MoreCfgsParityTest, HeadsMatchOpenCv) {
  expect_heads_match_opencv(testing::load_more_cfg(GetParam()), GetParam().name);
}

INSTANTIATE_TEST_SUITE_P(MoreCfgs, MoreCfgsParityTest, ::testing::ValuesIn(testing::more_cfgs()),
                         [](const ::testing::TestParamInfo<testing::MoreCfg>& param_info) {
                           return testing::test_name(param_info.param.name);
                         });

// Held to AVX2 (the _avx2 ctest entries), yolov3-tiny's 16->32, 32->64 and 64->128 convolutions run
// as our Winograd with the 2x2 stride-2 max pool after each done in the same step, and so does the
// first (3->16) convolution in our own pass (the 128->256 one feeds a route as well, so it keeps
// its output); with AVX-512 only the 64->128 one (oneDNN's kernels run the layers with fewer
// channels there). HeadsMatchOpenCv checks the values.
TEST(NativePlanTest, PoolsFollowingOurWinogradAreFused) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) GTEST_SKIP() << "needs AVX2 and FMA";
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());  // feature bits
  const bool avx512 = (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
  auto model = onednn::testing::load_test_model(testing::model_dir("yolov3-tiny"));
  const std::vector<std::string> kernels = make_onednn_backend(model, BackendOptions{})->kernels();
  // With AVX-512, from 32 channels (the 32->64 layer), or from 16 (and 16->32) where it runs at half width.
  const int fused = avx512 ? (onednn::avx512_half_width() ? 2 : 1) : 3;
  EXPECT_EQ(std::count(kernels.begin(), kernels.end(), "clouddetect:winograd_4x3+max_pool_2x2"), fused);
  if (avx512) return;
  EXPECT_EQ(std::count(kernels.begin(), kernels.end(), "clouddetect:input_convolution+max_pool_2x2"), 1);
  // Left: the pool after the route source.
  EXPECT_EQ(std::count(kernels.begin(), kernels.end(), "clouddetect:max_pool_2x2"), 1);
}

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
    EXPECT_LT(eval::relative_head_error({first_b[i]}, {second_b[i]}), 1e-6);
  }
}

// What serve does once its backends are built: the raw weights freed, the prepared ones still run
// and give the same heads; a later instance of the same layouts shares them, and the raw weights
// are needed (and asked for by name) only by a layout not prepared yet.
TEST(NativeParityTest, RunsTheSameAfterTheRawWeightsAreReleased) {
  auto model = darknet::load_model(testing::model_dir("yolo-fastest-1.1"));
  auto native = make_onednn_backend(model, BackendOptions{});
  const Tensor input = preprocess(*model, "000000000009");
  std::vector<Tensor> before, after, later;
  native->forward(input, before);
  darknet::release_weights(*model);
  for (const darknet::Layer& layer : model->layers) EXPECT_TRUE(layer.weights.weights.empty());
  native->forward(input, after);
  make_onednn_backend(model, BackendOptions{})->forward(input, later);
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].data, before[i].data);
    EXPECT_EQ(later[i].data, before[i].data);
  }
  native.reset();  // the last instance: its prepared weights go with it
  try {
    make_onednn_backend(model, BackendOptions{});
    FAIL() << "a backend was built without weights";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("released"), std::string::npos) << e.what();
  }
}

// int8 against fp32 on images it was not calibrated on. Quantisation noise, not exactness: measured
// 3-4% (yolov3-tiny) and 5-16% (yolo-fastest, depthwise) per head; a wrong scale, channel order or
// layout gives errors of order 1. The accuracy that matters, mAP, is measured by tests/accuracy
// (bench --precision int8).
void expect_int8_close_to_fp32(const std::shared_ptr<const darknet::Model>& model, const char* name) {
  std::vector<Tensor> calibration;
  for (const char* stem : {"000000000030", "000000000034", "000000000042", "000000000049", "000000000061",
                           "000000000064", "000000000071", "000000000072"}) {
    calibration.push_back(preprocess(*model, stem));
  }
  BackendOptions int8;
  int8.precision = Precision::kInt8;
  int8.activation_ranges = std::make_shared<ActivationRanges>(measure_activation_ranges(model, calibration));
  auto reference = make_onednn_backend(model, BackendOptions{});
  auto quantised = make_onednn_backend(model, int8);
  expect_no_reference_kernels(*quantised);
  std::vector<Tensor> expected, actual;
  for (const char* stem : {"000000000009", "000000000025", "000000000036"}) {
    Tensor input = preprocess(*model, stem);
    reference->forward(input, expected);
    quantised->forward(input, actual);
    ASSERT_EQ(actual.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(actual[i].shape, expected[i].shape) << "head " << i;
      const double error = eval::relative_head_error({actual[i]}, {expected[i]});
      std::printf("%s %s int8 head %zu: relative error %.3g\n", name, stem, i, error);
      EXPECT_LT(error, 0.3) << name << " " << stem << " head " << i;
    }
  }
}

class NativeInt8Test : public ::testing::TestWithParam<const char*> {};

TEST_P(NativeInt8Test, HeadsCloseToFp32) {
  expect_int8_close_to_fp32(onednn::testing::load_test_model(testing::model_dir(GetParam())), GetParam());
}

// int8 on the tiny ones of more-cfgs (their convolutions are leaky or linear: all run in int8).
class MoreCfgsInt8Test : public ::testing::TestWithParam<testing::MoreCfg> {};

TEST_P(MoreCfgsInt8Test, HeadsCloseToFp32) {
  expect_int8_close_to_fp32(testing::load_more_cfg(GetParam()), GetParam().name);
}

INSTANTIATE_TEST_SUITE_P(MoreCfgs, MoreCfgsInt8Test,
                         ::testing::Values(testing::more_cfgs()[0], testing::more_cfgs()[1], testing::more_cfgs()[2]),
                         [](const ::testing::TestParamInfo<testing::MoreCfg>& param_info) {
                           return testing::test_name(param_info.param.name);
                         });

INSTANTIATE_TEST_SUITE_P(Models, NativeInt8Test,
                         ::testing::Values("yolov3-tiny", "yolo-fastest-1.1", "yolo-fastest-1.1-xl"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           std::string name = param_info.param;
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

// The calibration file round-trips and is refused for another model.
TEST(ActivationRangesTest, SavedFileLoadsOnlyForItsModel) {
  auto model = darknet::load_model(testing::model_dir("yolo-fastest-1.1"));
  const ActivationRanges ranges =
      measure_activation_ranges(model, {preprocess(*model, "000000000009"), preprocess(*model, "000000000025")});
  EXPECT_EQ(ranges.images, 2);
  ASSERT_EQ(ranges.absmax.size(), model->layers.size());
  for (const darknet::Layer& layer : model->layers) {
    const auto& lowest = ranges.channel_min[static_cast<std::size_t>(layer.index)];
    const auto& highest = ranges.channel_max[static_cast<std::size_t>(layer.index)];
    ASSERT_EQ(lowest.size(), static_cast<std::size_t>(layer.output.c));
    ASSERT_EQ(highest.size(), static_cast<std::size_t>(layer.output.c));
    EXPECT_EQ(
        ranges.absmax[static_cast<std::size_t>(layer.index)],
        std::max(-*std::min_element(lowest.begin(), lowest.end()), *std::max_element(highest.begin(), highest.end())));
    EXPECT_GT(ranges.absmax[static_cast<std::size_t>(layer.index)], 0.0f) << "layer " << layer.index;
    // Two images: each channel's peaks p1, p2 have mean (p1 + p2) / 2 and deviation |p1 - p2| / 2, so
    // mean + deviation is the larger peak, the channel's |range|.
    const auto& mean = ranges.channel_peak_mean[static_cast<std::size_t>(layer.index)];
    const auto& sd = ranges.channel_peak_sd[static_cast<std::size_t>(layer.index)];
    ASSERT_EQ(mean.size(), lowest.size());
    ASSERT_EQ(sd.size(), lowest.size());
    for (std::size_t c = 0; c < mean.size(); ++c) {
      const float peak = std::max(-lowest[c], highest[c]);
      EXPECT_NEAR(mean[c] + sd[c], peak, 1e-4f * peak + 1e-6f) << "layer " << layer.index << " channel " << c;
      EXPECT_GE(sd[c], 0.0f);
      const float average = ranges.channel_mean[static_cast<std::size_t>(layer.index)][c];
      EXPECT_TRUE(lowest[c] <= average && average <= highest[c]) << "layer " << layer.index << " channel " << c;
    }
  }
  const std::string path = ::testing::TempDir() + "/ranges.json";
  save_activation_ranges(ranges, path);
  const ActivationRanges loaded = load_activation_ranges(path, *model);
  EXPECT_EQ(loaded.model, ranges.model);
  EXPECT_EQ(loaded.channel_min, ranges.channel_min);
  EXPECT_EQ(loaded.channel_max, ranges.channel_max);
  EXPECT_EQ(loaded.channel_peak_mean, ranges.channel_peak_mean);
  EXPECT_EQ(loaded.channel_peak_sd, ranges.channel_peak_sd);
  EXPECT_EQ(loaded.channel_mean, ranges.channel_mean);
  for (std::size_t i = 0; i < ranges.absmax.size(); ++i)
    EXPECT_NEAR(loaded.absmax[i], ranges.absmax[i], 1e-5f * ranges.absmax[i]);
  auto other = darknet::load_model(testing::model_dir("yolo-fastest-1.1-xl"));
  EXPECT_THROW(load_activation_ranges(path, *other), Error);
  EXPECT_THROW(load_activation_ranges(path + ".missing", *model), Error);
}

// A damaged or foreign file is refused with its path, never half-used.
TEST(ActivationRangesTest, MalformedFilesAreRefused) {
  auto model = darknet::load_model(testing::model_dir("yolo-fastest-1.1"));
  ActivationRanges good = measure_activation_ranges(model, {preprocess(*model, "000000000009")});
  const std::string path = ::testing::TempDir() + "/bad-ranges.json";
  auto refused = [&](const std::string& text) {
    std::ofstream(path) << text;
    try {
      load_activation_ranges(path, *model);
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      return true;
    }
    return false;
  };
  EXPECT_TRUE(refused("not json"));
  EXPECT_TRUE(refused(R"({"format": "something else"})"));
  EXPECT_TRUE(refused(R"({"format": "clouddetect-activation-ranges", "model": "x"})"));
  ActivationRanges wrong = good;
  wrong.channel_max[3].pop_back();  // a channel short
  save_activation_ranges(wrong, path);
  EXPECT_THROW(load_activation_ranges(path, *model), Error);
  wrong = good;
  wrong.channel_min[5][0] = wrong.channel_max[5][0] + 1;  // min above max
  save_activation_ranges(wrong, path);
  EXPECT_THROW(load_activation_ranges(path, *model), Error);
  wrong = good;
  wrong.channel_peak_sd[4].pop_back();  // peak statistics a channel short
  save_activation_ranges(wrong, path);
  EXPECT_THROW(load_activation_ranges(path, *model), Error);
  wrong = good;
  wrong.channel_mean[6].pop_back();  // means a channel short
  save_activation_ranges(wrong, path);
  EXPECT_THROW(load_activation_ranges(path, *model), Error);
  // A file from before the means were kept loads, without them (no bias correction).
  wrong = good;
  wrong.channel_mean.clear();
  save_activation_ranges(wrong, path);
  EXPECT_TRUE(load_activation_ranges(path, *model).channel_mean.empty());
  // A version 1 file (no peak statistics) names the command that replaces it.
  save_activation_ranges(good, path);
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  std::string v1 = text.str();
  v1.replace(v1.find("\"version\":2"), 11, "\"version\":1");
  std::ofstream(path) << v1;
  try {
    load_activation_ranges(path, *model);
    ADD_FAILURE() << "a version 1 file was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("run `clouddetect calibrate` again"), std::string::npos) << e.what();
  }
  save_activation_ranges(good, path);
  EXPECT_NO_THROW(load_activation_ranges(path, *model));
}

// Ranges built in code (not loaded from a checked file) are checked by the backend too.
TEST(ActivationRangesTest, IncompleteRangesAreRefusedByTheBackend) {
  auto model = darknet::load_model(testing::model_dir("yolo-fastest-1.1"));
  ActivationRanges ranges = measure_activation_ranges(model, {preprocess(*model, "000000000009")});
  BackendOptions int8;
  int8.precision = Precision::kInt8;
  int8.activation_ranges = std::make_shared<ActivationRanges>(ranges);
  EXPECT_NO_THROW(make_onednn_backend(model, int8));
  ranges.channel_peak_sd[7].pop_back();
  int8.activation_ranges = std::make_shared<ActivationRanges>(ranges);
  EXPECT_THROW(make_onednn_backend(model, int8), Error);
  ranges.channel_peak_sd.clear();
  int8.activation_ranges = std::make_shared<ActivationRanges>(ranges);
  EXPECT_THROW(make_onednn_backend(model, int8), Error);
}

}  // namespace
}  // namespace clouddetect
