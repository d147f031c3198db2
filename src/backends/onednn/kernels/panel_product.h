// The products of our Winograd (winograd.h): for every transformed position p, M_p = V_p U_p, a
// few dozen to a few hundred tiles (rows) by the channels (depth) times the channels by the filters
// (columns). oneDNN 2.6 multiplies these slowly where U_p is large: its matmul packs U_p again on
// every call, its grouped convolution is made for wide maps, not a few dozen tiles. Here U is packed
// once per model in panels of a few columns, each read contiguously from memory once per block,
// the next one prefetched while the current one is multiplied by every row.
#pragma once

#include <cstddef>

namespace clouddetect::onednn {

// Columns per panel: two vector registers, 16 floats with AVX2, 32 with AVX-512.
int panel_columns(bool avx512);

// One block's products. Element (r, k) of A_p is at a[p * a_position + r * a_row + k], element
// (r, c) of M_p at m[p * m_position + r * m_row + c]; U is [position][columns / panel
// columns][depth][panel columns]. Columns must be a multiple of panel_columns(avx512).
struct PanelProduct {
  int positions, rows, depth, columns;
  std::size_t a_position, a_row, m_position, m_row;
};

// Runs on the calling thread's OpenMP team (positions x panels in parallel). With `avx512`, the
// CPU must have it (lanes.h has_avx512()); without, AVX2 and FMA (has_avx2_fma()).
void multiply_panels(const PanelProduct& product, const float* a, const float* packed_u, float* m, bool avx512);

}  // namespace clouddetect::onednn
