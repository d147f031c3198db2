// The panel product's kernel, compiled once per instruction set: panel_product.cpp includes this
// file inside a `#pragma GCC target` region and a namespace that define Vec, kLanes, kMaxRows,
// zero(), load(), broadcast(), multiply_add() and store() for that set (Highway's per-target
// re-inclusion, without the library). No include guard, on purpose.

// Rows x (2 kLanes) of M from `rows` rows of A (depth long, a_row apart) and one panel of U,
// accumulated in registers over the whole depth. While it runs, prefetches `prefetch_lines` rows of
// the next panel into L2: every kernel of a panel a share, so that the next panel is in L2 when
// the last one ends.
template <int Rows>
__attribute__((always_inline)) inline void panel_rows(int depth, const float* a, std::size_t a_row, const float* panel,
                                                      float* m, std::size_t m_row, const float* prefetch,
                                                      int prefetch_lines) {
  Vec sums[Rows][2];
  const float* row[Rows];
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r) {
    sums[r][0] = sums[r][1] = zero();
    row[r] = a + r * a_row;
  }
  const auto step = [&](int k) __attribute__((always_inline)) {
    const Vec u0 = load(panel + 2 * kLanes * k), u1 = load(panel + 2 * kLanes * k + kLanes);
#pragma GCC unroll 16
    for (int r = 0; r < Rows; ++r) {
      const Vec v = broadcast(row[r] + k);
      sums[r][0] = multiply_add(v, u0, sums[r][0]);
      sums[r][1] = multiply_add(v, u1, sums[r][1]);
    }
  };
  int k = 0;
  // Two loops, not a test per step: a branch in the loop keeps GCC from holding the sums in registers.
#pragma GCC unroll 4
  for (; k < prefetch_lines; ++k) {
    __builtin_prefetch(prefetch + 2 * kLanes * k, 0, 2);
    if (kLanes == 16) __builtin_prefetch(prefetch + 2 * kLanes * k + kLanes, 0, 2);
    step(k);
  }
#pragma GCC unroll 4
  for (; k < depth; ++k) step(k);
#pragma GCC unroll 16
  for (int r = 0; r < Rows; ++r) {
    store(m + r * m_row, sums[r][0]);
    store(m + r * m_row + kLanes, sums[r][1]);
  }
}

// panel_rows<rows> for 1 <= rows <= Rows.
template <int Rows>
__attribute__((always_inline)) inline void panel_rows_up_to(int rows, int depth, const float* a, std::size_t a_row,
                                                            const float* panel, float* m, std::size_t m_row,
                                                            const float* prefetch, int prefetch_lines) {
  if constexpr (Rows > 1) {
    if (rows < Rows) {
      panel_rows_up_to<Rows - 1>(rows, depth, a, a_row, panel, m, m_row, prefetch, prefetch_lines);
      return;
    }
  }
  panel_rows<Rows>(depth, a, a_row, panel, m, m_row, prefetch, prefetch_lines);
}

// Every row of one position's M times one panel (`panel_index` in the position), prefetching
// `next`, the panel multiplied after it. The rows are shared evenly between the fewest kernels
// (25 rows: 7, 6, 6, 6, not 8, 8, 8, 1: a kernel of one row runs at a fraction of the peak).
inline void multiply_panel(const PanelProduct& p, const float* a, const float* u, float* m, int panel_index,
                           const float* next) {
  constexpr int kColumns = 2 * kLanes;
  const int kernels = (p.rows + kMaxRows - 1) / kMaxRows;
  const int share = (p.depth + kernels - 1) / kernels;
  for (int i = 0, first_row = 0; i < kernels; ++i) {
    const int rows = p.rows / kernels + (i < p.rows % kernels ? 1 : 0);
    const int first_line = std::min(i * share, p.depth);
    panel_rows_up_to<kMaxRows>(
        rows, p.depth, a + first_row * p.a_row, p.a_row, u, m + first_row * p.m_row + panel_index * kColumns, p.m_row,
        next + static_cast<std::size_t>(first_line) * kColumns, std::min(share, p.depth - first_line));
    first_row += rows;
  }
}

void multiply(const PanelProduct& p, const float* a, const float* packed_u, float* m) {
  constexpr int kColumns = 2 * kLanes;
  const int panels = p.columns / kColumns;
  const std::size_t panel_floats = static_cast<std::size_t>(p.depth) * kColumns;
  const int total = p.positions * panels;
#pragma omp parallel for schedule(static)
  for (int index = 0; index < total; ++index) {
    const int position = index / panels, panel_index = index % panels;
    const float* u = packed_u + static_cast<std::size_t>(index) * panel_floats;
    const float* next = index + 1 < total ? u + panel_floats : u;
    multiply_panel(p, a + position * p.a_position, u, m + position * p.m_position, panel_index, next);
  }
}
