// [route]: the listed layers concatenated along channels; with groups/group_id, only channel
// group `group_id` of `groups` of each listed layer is taken. A single whole layer is an alias.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "backends/onednn/plan.h"
#include "darknet/model.h"

namespace clouddetect::onednn {

// `inputs` are the outputs of layer.route.layers, in order.
dnnl::memory make_route(Plan& plan, const darknet::Layer& layer, const std::vector<dnnl::memory>& inputs);

}  // namespace clouddetect::onednn
