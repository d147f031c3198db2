// The request and response of POST /api/object_detection, as plain values (see docs/CONTRACT.md).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace clouddetect::api {

struct DetectRequest {
  std::string id;
  std::vector<unsigned char> image;  // decoded bytes (JPEG/PNG/...), never empty
  bool annotate = false;             // optional request field "annotate"
};

// Pixels of the original image; left/top is the top-left corner.
struct Rectangle {
  int left = 0, top = 0, width = 0, height = 0;
};

struct DetectedObject {
  std::string label;
  double accuracy = 0;  // in [0, 1]
  Rectangle rectangle;
};

struct DetectResponse {
  std::string id;
  std::vector<DetectedObject> objects;
  // Raw JPEG bytes; when non-empty, serialized as the base64 field "annotated_image".
  std::string annotated_jpeg;
};

struct RequestLimits {
  std::size_t max_id_bytes = 256;
  std::size_t max_json_depth = 8;
};

}  // namespace clouddetect::api
