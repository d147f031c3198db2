// [shortcut]: the previous layer's output plus layer `from`'s output, then the activation.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include "backends/onednn/plan.h"
#include "darknet/model.h"

namespace clouddetect::onednn {

// Appends the addition to `plan`; the output keeps the layout of `previous`.
dnnl::memory make_shortcut(Plan& plan, const darknet::Layer& layer, const dnnl::memory& previous,
                           const dnnl::memory& from);

}  // namespace clouddetect::onednn
