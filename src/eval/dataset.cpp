#include "eval/dataset.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace clouddetect::eval {

namespace fs = std::filesystem;

std::vector<std::string> list_images(const std::string& directory, std::size_t limit) {
  std::vector<std::string> images;
  std::error_code ec;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
    std::string extension = it->path().extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (extension == ".jpg" || extension == ".jpeg" || extension == ".png") images.push_back(it->path().string());
  }
  if (images.empty()) throw Error(ErrorCode::kNotFound, "no .jpg/.png images in " + directory);
  std::sort(images.begin(), images.end());
  if (limit > 0 && images.size() > limit) images.resize(limit);
  return images;
}

std::vector<GroundTruth> load_yolo_labels(const std::string& image_path, int width, int height) {
  fs::path image(image_path);
  const fs::path label = image.parent_path().parent_path() / "labels" / image.filename().replace_extension(".txt");
  std::vector<GroundTruth> truth;
  std::ifstream in(label);
  if (!in) return truth;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::istringstream fields(line);
    GroundTruth object;
    float cx = 0, cy = 0, w = 0, h = 0;
    if (!(fields >> object.class_id >> cx >> cy >> w >> h) || object.class_id < 0) {
      throw Error(ErrorCode::kInvalidArgument,
                  label.string() + ":" + std::to_string(number) + ": expected 'class cx cy w h'");
    }
    object.box = {(cx - w / 2) * static_cast<float>(width), (cy - h / 2) * static_cast<float>(height),
                  w * static_cast<float>(width), h * static_cast<float>(height)};
    truth.push_back(object);
  }
  return truth;
}

}  // namespace clouddetect::eval
