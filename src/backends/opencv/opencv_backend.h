#pragma once

#include <memory>

#include "backends/backend.h"

namespace clouddetect {

// Runs the model with OpenCV DNN (CPU, its own Darknet importer fed from our parsed model).
// Call cv::setNumThreads once per process to size OpenCV's thread pool; it is global.
std::unique_ptr<Backend> make_opencv_backend(std::shared_ptr<const darknet::Model> model,
                                             const BackendOptions& options);

// Each instance imports its own copy of the weights, from a serialized one made while it imports.
std::int64_t opencv_weights_bytes(const darknet::Model& model, Precision precision, int instances);

}  // namespace clouddetect
