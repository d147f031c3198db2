#include "darknet/model_loader.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "darknet/cfg_parser.h"
#include "darknet/weights_reader.h"

namespace clouddetect::darknet {

ModelFiles find_model_files(const std::string& directory) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(directory, ec)) {
    throw Error(ErrorCode::kNotFound, "model folder " + directory + " does not exist");
  }
  ModelFiles files;
  auto pick = [&](std::string& slot, const fs::path& path) {
    if (!slot.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "model folder " + directory + " has more than one " +
                                                   path.extension().string() + " file: " + slot + ", " + path.string());
    }
    slot = path.string();
  };
  for (const auto& entry : fs::directory_iterator(directory)) {
    if (!entry.is_regular_file()) continue;
    std::string extension = entry.path().extension().string();
    if (extension == ".cfg") pick(files.cfg, entry.path());
    if (extension == ".weights") pick(files.weights, entry.path());
    if (extension == ".names") pick(files.names, entry.path());
  }
  if (files.cfg.empty() || files.weights.empty() || files.names.empty()) {
    std::string missing = files.cfg.empty() ? ".cfg" : files.weights.empty() ? ".weights" : ".names";
    throw Error(ErrorCode::kNotFound, "model folder " + directory + " has no " + missing + " file");
  }
  return files;
}

std::vector<std::string> read_class_names(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot open names file " + path);
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

std::shared_ptr<Model> load_model(const std::string& directory) {
  ModelFiles files = find_model_files(directory);
  auto model = std::make_shared<Model>(parse_cfg_file(files.cfg));
  read_weights_file(files.weights, *model);
  model->class_names = read_class_names(files.names);
  if (static_cast<int>(model->class_names.size()) != model->num_classes()) {
    throw Error(ErrorCode::kInvalidArgument, files.names + " has " + std::to_string(model->class_names.size()) +
                                                 " names but " + files.cfg +
                                                 " has classes=" + std::to_string(model->num_classes()));
  }
  return model;
}

}  // namespace clouddetect::darknet
