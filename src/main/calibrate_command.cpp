// `clouddetect calibrate`: measures the activation ranges int8 inference quantises with, on
// images like the ones the service will see, and writes them next to the model.
#include <algorithm>
#include <iostream>

#include "darknet/model_loader.h"
#include "eval/dataset.h"
#include "main/commands.h"
#include "main/detection_service.h"
#include "main/mixed_precision.h"

namespace clouddetect {

int run_calibrate(const CalibrateOptions& options) {
  auto model = darknet::load_model(options.model.model_dir);
  const std::string folder = options.images.empty() ? shared_dir() + "/data/coco128/images" : options.images;
  const std::vector<std::string> images = eval::list_images(folder, static_cast<std::size_t>(options.limit));
  ActivationRanges ranges = calibrate_on_images(model, options.model, images);
  ranges.source = "the first " + std::to_string(images.size()) + " images of " + folder;
  if (options.head_error_budget > 0) {
    const std::vector<std::string> sample(
        images.begin(), images.begin() + std::min<std::ptrdiff_t>(options.sensitivity_images,
                                                                  static_cast<std::ptrdiff_t>(images.size())));
    const MixedPrecisionChoice choice =
        choose_fp32_layers(model, ranges, preprocess_images(*model, options.model, sample), options.head_error_budget,
                           options.max_fp32_layers, options.model.threads);
    ranges.fp32_layers = choice.fp32_layers;
    std::cerr << "mixed precision: " << choice.fp32_layers.size() << " convolutions in fp32 (budget "
              << options.head_error_budget << ", at most " << options.max_fp32_layers << "): head error "
              << choice.all_int8_error << " -> "
              << (choice.error_after.empty() ? choice.all_int8_error : choice.error_after.back()) << "\n";
  }
  ModelOptions target = options.model;
  target.calibration = options.out;
  const std::string path = calibration_path(target);
  save_activation_ranges(ranges, path);
  std::cerr << "measured " << model->name << " on " << ranges.images << " images of " << folder << "; wrote " << path
            << "\n";
  return 0;
}

}  // namespace clouddetect
