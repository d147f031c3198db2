// Finds and loads a model folder: exactly one .cfg, one .weights and one .names.
#pragma once

#include <memory>
#include <string>

#include "darknet/model.h"

namespace clouddetect::darknet {

struct ModelFiles {
  std::string cfg;
  std::string weights;
  std::string names;
};

// Throws Error{kNotFound} naming the folder and what is missing, or Error{kInvalidArgument} when
// a kind of file appears more than once.
ModelFiles find_model_files(const std::string& directory);

std::vector<std::string> read_class_names(const std::string& path);

// parse_cfg_file + read_weights_file + read_class_names, checking the names match the classes.
// Not const, so that its owner may release_weights() once every backend has its own copy.
std::shared_ptr<Model> load_model(const std::string& directory);

}  // namespace clouddetect::darknet
