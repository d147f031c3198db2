// A labelled image set in the YOLO layout of coco128: DIR/images/NAME.jpg with
// DIR/labels/NAME.txt holding "class cx cy w h" lines (normalised to the image size).
#pragma once

#include <string>
#include <vector>

#include "core/types.h"

namespace clouddetect::eval {

struct GroundTruth {
  int class_id = 0;
  Box box;  // pixels of the image
};

// The image files of `directory` (.jpg/.jpeg/.png), sorted by name; at most `limit` (0 = all).
// Throws Error{kNotFound} when the folder has none.
std::vector<std::string> list_images(const std::string& directory, std::size_t limit = 0);

// The labels of `image_path` (…/images/x.jpg -> …/labels/x.txt; no file = no objects) in pixels of
// a `width` x `height` image. Throws Error{kInvalidArgument} naming file:line for a malformed line.
std::vector<GroundTruth> load_yolo_labels(const std::string& image_path, int width, int height);

}  // namespace clouddetect::eval
