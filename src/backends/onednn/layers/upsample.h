// [upsample]: nearest neighbour by an integer `stride` (darknet: out[y][x] = in[y/s][x/s]).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include "backends/onednn/plan.h"
#include "darknet/model.h"

namespace clouddetect::onednn {

// Appends the resampling to `plan`; the output keeps the layout of `src`, written to `into` when given
// (a memory of that layout).
dnnl::memory make_upsample(Plan& plan, const darknet::Layer& layer, const dnnl::memory& src,
                           const dnnl::memory* into = nullptr);

}  // namespace clouddetect::onednn
