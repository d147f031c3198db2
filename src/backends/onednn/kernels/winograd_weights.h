// The weight transform of our Winograd convolution (winograd.h), done once per model by
// PreparedConvolution::winograd_weights.
#pragma once

#include <vector>

namespace clouddetect::onednn {

// The transformed weights G g G^T of every (channel, filter), from folded oihw weights of 3x3
// filters, for F(tile x tile, 3x3) at `stride` (1 or 2): [kA^2][channels][filters] (kA of
// winograd_matrices.h), computed in double.
std::vector<float> winograd_weights(const std::vector<float>& oihw, int filters, int channels, int tile, int stride);

}  // namespace clouddetect::onednn
