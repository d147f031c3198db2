// Our pipeline against OpenCV's own Darknet importer, on the real yolov3-tiny.cfg and the six cfgs
// of more-cfgs with synthetic weights (the official weights cannot be downloaded here) and on the real
// yolo-fastest models: raw heads must be identical, and our darknet-style decoding of them (incl.
// [yolo] scale_x_y) must equal OpenCV's [yolo] layer.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <opencv2/dnn.hpp>

#include "backends/backend.h"
#include "darknet/cfg_parser.h"
#include "darknet/model_loader.h"
#include "darknet/synthetic_weights.h"
#include "darknet/weights_reader.h"
#include "image/decode.h"
#include "image/letterbox.h"
#include "more_cfgs.h"
#include "shared_data.h"
#include "yolo/decode_heads.h"

namespace clouddetect {
namespace {

using testing::coco_image;
using testing::model_dir;

std::shared_ptr<const darknet::Model> load(const std::string& name) {
  for (const testing::MoreCfg& cfg : testing::more_cfgs()) {
    if (name == cfg.name) return testing::load_more_cfg(cfg);
  }
  if (name != "yolov3-tiny") return darknet::load_model(model_dir(name));
  auto model = std::make_shared<darknet::Model>(darknet::parse_cfg_file(model_dir(name) + "/yolov3-tiny.cfg"));
  darknet::fill_synthetic_weights(*model, 1);
  model->class_names = darknet::read_class_names(model_dir(name) + "/coco.names");
  return model;
}

Tensor input_for(const darknet::Model& model, const std::string& stem) {
  std::ifstream in(coco_image(stem), std::ios::binary);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Tensor tensor;
  image::Preprocessor(model.width, model.height, image::ResizeMode::kStretch)
      .run(image::decode(bytes, 1 << 26), tensor);
  return tensor;
}

float logistic(float x) { return 1.0f / (1.0f + std::exp(-x)); }

class ImporterParity : public ::testing::TestWithParam<const char*> {};

TEST_P(ImporterParity, RawHeadsAndDecodingMatchOpenCvDarknetImporter) {
  auto model = load(GetParam());
  // OpenCV's importer reading the weights file bytes directly, as users' Python code does.
  std::vector<char> weights = darknet::serialize_weights(*model);
  cv::dnn::Net reference =
      cv::dnn::readNetFromDarknet(model->cfg_text.data(), model->cfg_text.size(), weights.data(), weights.size());
  reference.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  std::vector<cv::Mat> decoded;

  auto backend = create_backend("opencv", model, {});
  std::vector<Tensor> heads;
  for (const char* stem : {"000000000009", "000000000025"}) {
    Tensor input = input_for(*model, stem);
    backend->forward(input, heads);
    int dims[4] = {1, 3, model->height, model->width};
    reference.setInput(cv::Mat(4, dims, CV_32F, input.data.data()));
    reference.forward(decoded, reference.getUnconnectedOutLayersNames());
    ASSERT_EQ(decoded.size(), heads.size());

    const auto yolo_layers = model->yolo_layers();
    for (std::size_t h = 0; h < heads.size(); ++h) {
      const auto& layer = model->layers[yolo_layers[h]];
      const auto& p = layer.yolo;
      const int grid_w = layer.input.w, grid_h = layer.input.h, cells = grid_w * grid_h;
      const int anchors = static_cast<int>(p.mask.size()), entries = 5 + p.classes;
      const cv::Mat& out = decoded[h];  // rows = cells * anchors, (row, col, anchor) order
      ASSERT_EQ(out.rows, cells * anchors);
      ASSERT_EQ(out.cols, entries);
      double max_box_error = 0, max_score_error = 0;
      int confident = 0;
      for (int cell = 0; cell < cells; ++cell) {
        for (int a = 0; a < anchors; ++a) {
          const float* raw = heads[h].data.data() + static_cast<std::size_t>(a) * entries * cells;
          const float* theirs = out.ptr<float>(cell * anchors + a);
          Box box = yolo::get_yolo_box(raw, a, cell % grid_w, cell / grid_w, cells, p, grid_w, grid_h, model->width,
                                       model->height);
          max_box_error = std::max<double>(
              {max_box_error, std::abs(box.x + box.w / 2 - theirs[0]), std::abs(box.y + box.h / 2 - theirs[1]),
               std::abs(box.w - theirs[2]) / theirs[2], std::abs(box.h - theirs[3]) / theirs[3]});
          float objectness = logistic(raw[4 * cells + cell]);
          max_score_error = std::max(max_score_error, static_cast<double>(std::abs(objectness - theirs[4])));
          for (int c = 0; c < p.classes; ++c) {
            float ours = objectness * logistic(raw[(5 + c) * cells + cell]);
            if (theirs[5 + c] > 0) {  // OpenCV zeroes class scores below its own small threshold
              max_score_error = std::max(max_score_error, static_cast<double>(std::abs(ours - theirs[5 + c])));
              confident += ours > 0.5f;
            } else {
              EXPECT_LE(ours, 0.2001f);
            }
          }
        }
      }
      EXPECT_LT(max_box_error, 1e-5) << GetParam() << " head " << h << " image " << stem;
      EXPECT_LT(max_score_error, 1e-5) << GetParam() << " head " << h << " image " << stem;
      if (std::string(GetParam()).rfind("yolo-fastest", 0) == 0) {  // the models with real weights
        EXPECT_GT(confident + static_cast<int>(h), 0);              // real models are confident somewhere
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ImporterParity,
                         ::testing::Values("yolov3-tiny", "yolo-fastest-1.1", "yolo-fastest-1.1-xl"));
INSTANTIATE_TEST_SUITE_P(MoreCfgs, ImporterParity,
                         ::testing::Values("yolov3-tiny-prn", "yolov4-tiny", "yolov4-tiny-3l", "yolov3", "yolov3-spp",
                                           "yolov4"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           return testing::test_name(param_info.param);
                         });

}  // namespace
}  // namespace clouddetect
