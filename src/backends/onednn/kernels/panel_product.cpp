#include "backends/onednn/kernels/panel_product.h"

#include <immintrin.h>

#include <algorithm>
#include <cstddef>

namespace clouddetect::onednn {

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace panel_avx2 {
using Vec = __m256;
constexpr int kLanes = 8;
constexpr int kMaxRows = 6;  // 12 sums, 2 panel values and the broadcast: 15 of the 16 registers
inline Vec zero() { return _mm256_setzero_ps(); }
inline Vec load(const float* p) { return _mm256_loadu_ps(p); }
inline Vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
inline Vec multiply_add(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
#include "backends/onednn/kernels/panel_kernel.inl"
}  // namespace panel_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
namespace panel_avx512 {
using Vec = __m512;
constexpr int kLanes = 16;
constexpr int kMaxRows = 8;  // of 32 registers; 8 rows beat 6, 10 and 12 (docs/PERFORMANCE.md)
inline Vec zero() { return _mm512_setzero_ps(); }
inline Vec load(const float* p) { return _mm512_loadu_ps(p); }
inline Vec broadcast(const float* p) { return _mm512_set1_ps(*p); }
inline Vec multiply_add(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
#include "backends/onednn/kernels/panel_kernel.inl"
}  // namespace panel_avx512
#pragma GCC pop_options

int panel_columns(bool avx512) { return avx512 ? 2 * panel_avx512::kLanes : 2 * panel_avx2::kLanes; }

void multiply_panels(const PanelProduct& product, const float* a, const float* packed_u, float* m, bool avx512) {
  if (avx512) {
    panel_avx512::multiply(product, a, packed_u, m);
  } else {
    panel_avx2::multiply(product, a, packed_u, m);
  }
}

}  // namespace clouddetect::onednn
