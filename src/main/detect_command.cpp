#include <fstream>
#include <iostream>
#include <opencv2/core/utility.hpp>

#include "api/json_codec.h"
#include "core/error.h"
#include "darknet/model_loader.h"
#include "image/annotate.h"
#include "image/decode.h"
#include "main/commands.h"
#include "main/detection_service.h"

namespace clouddetect {

int run_detect(const DetectOptions& options) {
  if (!options.annotate.empty() && options.images.size() != 1) {
    throw Error(ErrorCode::kInvalidArgument, "--annotate takes exactly one input image");
  }
  cv::setNumThreads(options.model.threads);
  auto model = darknet::load_model(options.model.model_dir);
  auto detector = make_detector(model, options.model);
  int failures = 0;
  for (const std::string& path : options.images) {
    try {
      cv::Mat image = read_image_file(path, options.max_pixels);
      std::vector<Detection> detections = detector->detect(image);
      std::cout << api::serialize_detect_response(to_response(path, detections, model->class_names)) << "\n";
      if (!options.annotate.empty()) {
        std::string jpeg = image::encode_jpeg(image::annotate(image, detections, model->class_names));
        std::ofstream out(options.annotate, std::ios::binary);
        if (!out.write(jpeg.data(), static_cast<std::streamsize>(jpeg.size()))) {
          throw Error(ErrorCode::kInvalidArgument, "cannot write " + options.annotate);
        }
      }
    } catch (const Error& e) {
      // One bad file must not hide the results of the others; it still fails the command.
      std::cerr << "clouddetect: " << path << ": " << e.what() << "\n";
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace clouddetect
