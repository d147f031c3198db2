// [maxpool]: darknet semantics, out = (in + padding - size) / stride + 1, the window starting at
// -padding/2, cells outside the input ignored (darknet's -inf). So size=2 stride=1 (yolov3-tiny)
// pads right/bottom only, and odd sizes with stride 1 (yolo-fastest's SPP) pad symmetrically.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include "backends/onednn/plan.h"
#include "darknet/model.h"

namespace clouddetect::onednn {

// Appends the pooling to `plan`; the output keeps the layout of `src`.
dnnl::memory make_maxpool(Plan& plan, const darknet::Layer& layer, const dnnl::memory& src);

}  // namespace clouddetect::onednn
