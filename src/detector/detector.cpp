#include "detector/detector.h"

#include "yolo/nms.h"

namespace clouddetect {

Detector::Detector(std::shared_ptr<const darknet::Model> model, std::unique_ptr<Backend> backend,
                   const DetectorOptions& options)
    : model_(std::move(model)),
      backend_(std::move(backend)),
      options_(options),
      preprocessor_(model_->width, model_->height, options.resize) {}

std::vector<Detection> Detector::detect(const cv::Mat& bgr) {
  image::LetterboxTransform transform = preprocessor_.run(bgr, input_);
  backend_->forward(input_, heads_);
  candidates_.clear();
  yolo::decode_heads(*model_, heads_, options_.score_threshold, candidates_);
  yolo::nms(candidates_, options_.nms_threshold);
  std::vector<Detection> detections;
  detections.reserve(candidates_.size());
  for (const auto& candidate : candidates_) {
    Box box = transform.to_original(candidate.box);
    if (box.w <= 0 || box.h <= 0) continue;  // entirely outside the image after clipping
    detections.push_back(Detection{candidate.class_id, candidate.score, box});
  }
  return detections;
}

image::ResizeMode default_resize_mode(const darknet::Model& model) {
  return model.letter_box ? image::ResizeMode::kLetterbox : image::ResizeMode::kStretch;
}

}  // namespace clouddetect
