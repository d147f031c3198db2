#pragma once

#include "darknet/model.h"

namespace clouddetect::darknet {

// Fills every convolutional layer with deterministic random weights in the exact layout of the cfg:
// He-scaled kernels, small biases, batch-norm statistics away from the identity (so that folding
// them is exercised). The one generator of `make-weights`, `bench` and the tests. Speed equals that
// of real weights; detections do not.
void fill_synthetic_weights(Model& model, unsigned seed);

}  // namespace clouddetect::darknet
