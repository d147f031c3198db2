#include "backends/opencv/opencv_backend.h"

#include <algorithm>
#include <opencv2/dnn.hpp>
#include <string>

#include "core/error.h"
#include "darknet/weights_reader.h"

namespace clouddetect {
namespace {

class OpenCvBackend final : public Backend {
 public:
  explicit OpenCvBackend(std::shared_ptr<const darknet::Model> model) : model_(std::move(model)) {
    std::vector<char> weights = darknet::serialize_weights(*model_);
    try {
      net_ =
          cv::dnn::readNetFromDarknet(model_->cfg_text.data(), model_->cfg_text.size(), weights.data(), weights.size());
      net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
      net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    } catch (const cv::Exception& e) {
      throw Error(ErrorCode::kInvalidArgument, "opencv backend cannot import " + model_->cfg_path + ": " + e.what());
    }
    // OpenCV names its layers "<kind>_<cfg index>"; the last one with a given index is the output
    // of that cfg layer (conv_N, bn_N, relu_N...). Each [yolo] head is the output of the layer before it.
    std::vector<std::string> names = net_.getLayerNames();
    for (int yolo : model_->yolo_layers()) {
      const std::string suffix = "_" + std::to_string(yolo - 1);
      auto it = std::find_if(names.rbegin(), names.rend(), [&](const std::string& name) {
        return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
      });
      if (it == names.rend()) {
        throw Error(ErrorCode::kInternal, "opencv backend: no layer for cfg layer " + std::to_string(yolo - 1));
      }
      output_names_.push_back(*it);
    }
  }

  std::string_view name() const override { return "opencv"; }

  void forward(const Tensor& input, std::vector<Tensor>& heads) override {
    try {
      int dims[4] = {input.shape[0], input.shape[1], input.shape[2], input.shape[3]};
      // cv::Mat over the caller's buffer: no copy; setInput copies it into the net.
      cv::Mat blob(4, dims, CV_32F, const_cast<float*>(input.data.data()));
      net_.setInput(blob);
      net_.forward(outputs_, output_names_);
    } catch (const cv::Exception& e) {
      throw Error(ErrorCode::kInternal, std::string("opencv backend: ") + e.what());
    }
    heads.resize(outputs_.size());
    for (std::size_t i = 0; i < outputs_.size(); ++i) {
      const cv::Mat& out = outputs_[i];
      std::vector<int> shape(out.size.p, out.size.p + out.dims);
      heads[i].reshape(shape);
      std::copy_n(out.ptr<float>(), heads[i].data.size(), heads[i].data.begin());
    }
  }

 private:
  std::shared_ptr<const darknet::Model> model_;
  cv::dnn::Net net_;
  std::vector<std::string> output_names_;
  std::vector<cv::Mat> outputs_;
};

}  // namespace

std::int64_t opencv_weights_bytes(const darknet::Model& model, Precision precision, int instances) {
  (void)precision;  // fp32 only
  return static_cast<std::int64_t>(darknet::expected_weights_size(model)) * (instances + 1);
}

std::unique_ptr<Backend> make_opencv_backend(std::shared_ptr<const darknet::Model> model,
                                             const BackendOptions& options) {
  (void)options;  // fp32 only (registry.cpp); OpenCV's threads are process-wide
  return std::make_unique<OpenCvBackend>(std::move(model));
}

}  // namespace clouddetect
