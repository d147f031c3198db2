// The weight transform of our Winograd convolution (winograd.h), done once per model by
// PreparedConvolution::winograd_weights.
#pragma once

#include <vector>

namespace clouddetect::onednn {

// The transformed weights G g G^T of every (channel, filter), from folded oihw weights of 3x3
// filters: [(tile + 2)^2][channels][filters], computed in double.
std::vector<float> winograd_weights(const std::vector<float>& oihw, int filters, int channels, int tile);

}  // namespace clouddetect::onednn
