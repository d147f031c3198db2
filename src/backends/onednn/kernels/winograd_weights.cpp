#include "backends/onednn/kernels/winograd_weights.h"

#include <cstddef>
#include <stdexcept>
#include <string>

#include "backends/onednn/kernels/winograd_matrices.h"

namespace clouddetect::onednn {

namespace {

template <int Tile, int Stride>
std::vector<float> transform(const std::vector<float>& oihw, int filters, int channels) {
  constexpr int a = Matrices<Tile, Stride>::kA;
  const auto& g = Matrices<Tile, Stride>::kG;
  std::vector<float> u(static_cast<std::size_t>(a * a) * channels * filters);
  for (int k = 0; k < filters; ++k) {
    for (int c = 0; c < channels; ++c) {
      const float* f = oihw.data() + (static_cast<std::size_t>(k) * channels + c) * 9;
      double gf[a][3];  // G f
      for (int i = 0; i < a; ++i) {
        for (int x = 0; x < 3; ++x) gf[i][x] = g[i][0] * f[0 * 3 + x] + g[i][1] * f[1 * 3 + x] + g[i][2] * f[2 * 3 + x];
      }
      for (int i = 0; i < a; ++i) {
        for (int j = 0; j < a; ++j) {  // (G f) GT
          const double value = gf[i][0] * g[j][0] + gf[i][1] * g[j][1] + gf[i][2] * g[j][2];
          u[(static_cast<std::size_t>(i * a + j) * channels + c) * filters + k] = static_cast<float>(value);
        }
      }
    }
  }
  return u;
}

}  // namespace

std::vector<float> winograd_weights(const std::vector<float>& oihw, int filters, int channels, int tile, int stride) {
  if (stride == 1) {
    if (tile == 2) return transform<2, 1>(oihw, filters, channels);
    if (tile == 3) return transform<3, 1>(oihw, filters, channels);
    if (tile == 4) return transform<4, 1>(oihw, filters, channels);
  } else if (stride == 2) {
    if (tile == 2) return transform<2, 2>(oihw, filters, channels);
    if (tile == 3) return transform<3, 2>(oihw, filters, channels);
    if (tile == 4) return transform<4, 2>(oihw, filters, channels);
  }
  throw std::invalid_argument("no Winograd F(" + std::to_string(tile) + "x" + std::to_string(tile) +
                              ", 3x3) at stride " + std::to_string(stride));
}

}  // namespace clouddetect::onednn
