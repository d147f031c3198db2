// `clouddetect_onednn_bench --products MODEL_DIR [iterations]`: Winograd's products for each 3x3
// stride-1 convolution of a model, in one block as our Winograd lays them out, as oneDNN's batched
// matmul (its weights pre-packed in the layout it asks for) and as our panels (panel_product.h),
// side by side, with the one the backend picks there.
#pragma once

#include <string>

namespace clouddetect::onednn {

int bench_products(const std::string& directory, int iterations);

}  // namespace clouddetect::onednn
