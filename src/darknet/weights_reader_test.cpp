#include "darknet/weights_reader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "../tests/shared_data.h"
#include "core/error.h"
#include "darknet/cfg_parser.h"
#include "darknet/model_loader.h"

namespace clouddetect::darknet {
namespace {

using clouddetect::testing::model_dir;

TEST(WeightsReader, Yolov3TinyNeedsTheOfficialFileSize) {
  Model model = parse_cfg_file(model_dir("yolov3-tiny") + "/yolov3-tiny.cfg");
  EXPECT_EQ(expected_weights_size(model), 35434956u);
}

TEST(WeightsReader, ReadsRealYoloFastestExactly) {
  auto model = load_model(model_dir("yolo-fastest-1.1"));
  EXPECT_EQ(expected_weights_size(*model),
            std::filesystem::file_size(model_dir("yolo-fastest-1.1") + "/yolo-fastest-1.1.weights"));
  const Layer& first = model->layers[0];
  ASSERT_EQ(first.type, LayerType::kConvolutional);
  EXPECT_EQ(first.weights.weights.size(), 8u * 3 * 3 * 3);
  EXPECT_EQ(first.weights.scales.size(), 8u);
  // Trained batch-norm variances are positive; random bytes read at a wrong offset would not be.
  for (const Layer& layer : model->layers) {
    for (float v : layer.weights.rolling_variance) ASSERT_GT(v, 0.0f) << "layer " << layer.index;
  }
  EXPECT_EQ(model->class_names.size(), 80u);
  EXPECT_EQ(model->class_names[16], "dog");
}

TEST(WeightsReader, SerializeRoundTrips) {
  auto model = load_model(model_dir("yolo-fastest-1.1"));
  std::vector<char> bytes = serialize_weights(*model);
  Model copy = parse_cfg_file(model->cfg_path);
  read_weights_bytes(bytes, "copy", copy);
  for (std::size_t i = 0; i < copy.layers.size(); ++i) {
    EXPECT_EQ(copy.layers[i].weights.weights, model->layers[i].weights.weights);
    EXPECT_EQ(copy.layers[i].weights.rolling_mean, model->layers[i].weights.rolling_mean);
  }
}

TEST(WeightsReader, RejectsTruncatedAndOversizedFiles) {
  auto model = load_model(model_dir("yolo-fastest-1.1"));
  std::vector<char> bytes = serialize_weights(*model);
  Model target = parse_cfg_file(model->cfg_path);
  for (std::size_t size : {bytes.size() - 4, bytes.size() + 4, std::size_t{10}, std::size_t{0}}) {
    std::vector<char> wrong(bytes.begin(), bytes.begin() + static_cast<long>(std::min(size, bytes.size())));
    wrong.resize(size);
    try {
      read_weights_bytes(wrong, "bad.weights", target);
      FAIL() << size;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("bad.weights"), std::string::npos) << e.what();
    }
  }
}

TEST(WeightsReader, HostileHeaderVersionIsAnErrorNotUndefinedBehaviour) {
  // Regression (libFuzzer, fuzz_model_files): a major version near INT_MAX overflowed major * 10.
  Model model = parse_cfg_file(model_dir("yolo-fastest-1.1") + "/yolo-fastest-1.1.cfg");
  std::vector<char> bytes(64, 0);
  const int32_t header[3] = {1030647552, 2147483647, 0};
  std::memcpy(bytes.data(), header, sizeof(header));
  EXPECT_THROW(read_weights_bytes(bytes, "hostile.weights", model), Error);
}

TEST(ModelLoader, ExplainsMissingFiles) {
  try {
    load_model(model_dir("yolov3-tiny"));  // the official weights are not shipped in ../shared
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("has no .weights file"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace clouddetect::darknet
