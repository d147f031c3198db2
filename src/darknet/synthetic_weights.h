#pragma once

#include "darknet/model.h"

namespace clouddetect::darknet {

// Fills every convolutional layer with deterministic random weights in the exact layout of the cfg
// (batch norm as identity, He-scaled kernels). Speed equals that of real weights; detections do not.
void fill_synthetic_weights(Model& model, unsigned seed);

}  // namespace clouddetect::darknet
