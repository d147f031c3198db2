// The network's first convolution over the few channels of the image (yolov3-tiny: 3 -> 16, 3x3,
// 416x416) together with the 2x2 stride-2 max pool after it, in one pass of our own. oneDNN runs
// the convolution well but cannot fuse a pool, and the full-size output (16 x 416 x 416, 11 MB)
// then goes through memory twice more for the pool.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include "backends/onednn/plan.h"
#include "backends/onednn/prepared_model.h"
#include "darknet/model.h"

namespace clouddetect::onednn {

// True when `conv` (a [convolutional] reading the plain nchw image) and a 2x2 stride-2 max pool after
// it can run as make_input_convolution_pooled in `plan`: a dense 3x3 stride-1 convolution padded by
// 1 over at most 4 channels, filters a multiple of 16, an even map, the nChw8c layout (AVX2; with
// AVX-512 oneDNN's kernel is fast enough) and an AVX2+FMA CPU.
bool input_convolution_pooled_fits(const Plan& plan, const darknet::Layer& conv);

// Appends the pass; `src` is the plain nchw input. Returns the pooled output in the plan's
// activation layout.
dnnl::memory make_input_convolution_pooled(Plan& plan, const PreparedConvolution& prepared, const dnnl::memory& src);

}  // namespace clouddetect::onednn
