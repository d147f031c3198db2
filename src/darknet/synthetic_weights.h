#pragma once

#include "darknet/model.h"

namespace clouddetect::darknet {

// Fills every convolutional layer with deterministic random weights in the exact layout of the cfg
// (He-scaled kernels, batch-norm statistics away from the identity, residual branches scaled down so
// that deep networks keep sane activations). Speed equals that of real weights; detections do not.
void fill_synthetic_weights(Model& model, unsigned seed);

}  // namespace clouddetect::darknet
