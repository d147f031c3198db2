// `clouddetect calibrate`: measures the activation ranges int8 inference quantises with, on
// images like the ones the service will see, and writes them next to the model.
#include <iostream>

#include "darknet/model_loader.h"
#include "eval/dataset.h"
#include "main/commands.h"
#include "main/detection_service.h"

namespace clouddetect {

int run_calibrate(const CalibrateOptions& options) {
  auto model = darknet::load_model(options.model.model_dir);
  const std::string folder = options.images.empty() ? shared_dir() + "/data/coco128/images" : options.images;
  const std::vector<std::string> images = eval::list_images(folder, static_cast<std::size_t>(options.limit));
  const ActivationRanges ranges = calibrate_on_images(model, options.model, images);
  ModelOptions target = options.model;
  target.calibration = options.out;
  const std::string path = calibration_path(target);
  save_activation_ranges(ranges, path);
  std::cerr << "measured " << model->name << " on " << ranges.images << " images of " << folder << "; wrote " << path
            << "\n";
  return 0;
}

}  // namespace clouddetect
