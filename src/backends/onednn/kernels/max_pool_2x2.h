// Darknet's 2x2 max pools of our own, in the blocked fp32 layouts (nChw8c / nChw16c): stride 2 on
// even maps (yolov3-tiny's halving pools) and stride 1 with darknet's right/bottom padding, where
// oneDNN 2.6's pooling kernels are slow (docs/PERFORMANCE.md). Compiled for AVX2+FMA.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include "backends/onednn/plan.h"
#include "darknet/model.h"

namespace clouddetect::onednn {

// True when the [maxpool] `layer` reading `src_md` can run as make_max_pool_2x2 on this CPU.
bool max_pool_2x2_fits(const darknet::Layer& layer, const dnnl::memory::desc& src_md);

// Appends the pool as a step of our own; the output has the layout of `src`.
dnnl::memory make_max_pool_2x2(Plan& plan, const darknet::Layer& layer, const dnnl::memory& src);

}  // namespace clouddetect::onednn
