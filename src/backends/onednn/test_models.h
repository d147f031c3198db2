// Models for the native backend's tests and benchmark: the shipped folders with their real
// weights, or a cfg-only folder (yolov3-tiny) with deterministic synthetic weights.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "darknet/cfg_parser.h"
#include "darknet/model_loader.h"
#include "darknet/synthetic_weights.h"

namespace clouddetect::onednn::testing {

// A folder with .weights loads as is; a folder with only a .cfg gets synthetic weights.
inline std::shared_ptr<const darknet::Model> load_test_model(const std::string& directory) {
  std::string cfg;
  bool has_weights = false;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    if (entry.path().extension() == ".cfg") cfg = entry.path().string();
    if (entry.path().extension() == ".weights") has_weights = true;
  }
  if (has_weights) return darknet::load_model(directory);
  auto model = std::make_shared<darknet::Model>(darknet::parse_cfg_file(cfg));
  darknet::fill_synthetic_weights(*model, 1);
  return model;
}

}  // namespace clouddetect::onednn::testing
