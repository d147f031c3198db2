#include "backends/onednn/kernels/winograd_weights.h"

#include <cstddef>

#include "backends/onednn/kernels/winograd_matrices.h"

namespace clouddetect::onednn {

std::vector<float> winograd_weights(const std::vector<float>& oihw, int filters, int channels, int tile) {
  const int a = tile + 2;
  const double* g = tile == 2 ? &Matrices<2>::kG[0][0] : tile == 3 ? &Matrices<3>::kG[0][0] : &Matrices<4>::kG[0][0];
  std::vector<float> u(static_cast<std::size_t>(a * a) * channels * filters);
  for (int k = 0; k < filters; ++k) {
    for (int c = 0; c < channels; ++c) {
      const float* f = oihw.data() + (static_cast<std::size_t>(k) * channels + c) * 9;
      double gf[6][3];  // G f
      for (int i = 0; i < a; ++i) {
        for (int x = 0; x < 3; ++x) {
          gf[i][x] = g[i * 3 + 0] * f[0 * 3 + x] + g[i * 3 + 1] * f[1 * 3 + x] + g[i * 3 + 2] * f[2 * 3 + x];
        }
      }
      for (int i = 0; i < a; ++i) {
        for (int j = 0; j < a; ++j) {  // (G f) GT
          const double value = gf[i][0] * g[j * 3 + 0] + gf[i][1] * g[j * 3 + 1] + gf[i][2] * g[j * 3 + 2];
          u[(static_cast<std::size_t>(i * a + j) * channels + c) * filters + k] = static_cast<float>(value);
        }
      }
    }
  }
  return u;
}

}  // namespace clouddetect::onednn
