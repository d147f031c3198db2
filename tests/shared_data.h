// Where tests find the real models and images: $CLOUDDETECT_SHARED (set by CTest), else the folder CMake was
// configured with (-DCLOUDDETECT_SHARED, default ../shared beside the repository root): the same rule as scripts/
// and tools/devkit.py, whatever the current directory. clouddetect_add_test() defines CLOUDDETECT_SHARED_DEFAULT.
#pragma once

#ifndef CLOUDDETECT_SHARED_DEFAULT
#error "CLOUDDETECT_SHARED_DEFAULT is not defined: register the test with clouddetect_add_test()"
#endif

#include <cstdlib>
#include <filesystem>
#include <string>

namespace clouddetect::testing {

inline std::string shared_dir() {
  const char* env = std::getenv("CLOUDDETECT_SHARED");
  return env && *env ? env : CLOUDDETECT_SHARED_DEFAULT;
}
inline std::string shared_path(const std::string& relative) { return shared_dir() + "/" + relative; }
inline std::string model_dir(const std::string& name) { return shared_path("models/" + name); }
inline std::string coco_image(const std::string& stem) { return shared_path("data/coco128/images/" + stem + ".jpg"); }

}  // namespace clouddetect::testing
