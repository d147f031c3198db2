// Where tests find the real models and images: $CLOUDDETECT_SHARED (set by CTest), else ../shared.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

namespace clouddetect::testing {

inline std::string shared_dir() {
  const char* env = std::getenv("CLOUDDETECT_SHARED");
  return env && *env ? env : "../shared";
}
inline std::string shared_path(const std::string& relative) { return shared_dir() + "/" + relative; }
inline std::string model_dir(const std::string& name) { return shared_path("models/" + name); }
inline std::string coco_image(const std::string& stem) { return shared_path("data/coco128/images/" + stem + ".jpg"); }

}  // namespace clouddetect::testing
