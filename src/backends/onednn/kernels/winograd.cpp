#include "backends/onednn/kernels/winograd.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>

#include "backends/onednn/kernels/lanes.h"
#include "backends/onednn/kernels/panel_product.h"
#include "backends/onednn/kernels/winograd_matrices.h"

namespace clouddetect::onednn {

using dnnl::memory;

namespace {

struct Geometry {
  int channels, filters, h, w, tiles_x, tiles_y, positions, block;  // h, w: the output map's
  int in_h, in_w;
  int tiles() const { return tiles_x * tiles_y; }
};

// Where the transforms keep a block's transformed values in V (channels) or M (filters): tile t,
// position p, channel block b start at t * tile + p * position + b * block floats.
struct TileLayout {
  std::size_t tile, position, block;
};

// The loops below have compile-time trip counts and constant matrices: unrolled, the zero
// coefficients vanish and the +-1 ones become additions. A value is one channel block (lanes.h).

// One row of tiles, every channel block, into `v_row` (V of the row's first tile).
template <int Tile, int Stride, int Block>
CLOUDDETECT_INLINED_AVX2 void transform_input_row(const float* src, const Geometry& g, int tile_y, TileLayout layout,
                                                  float* v_row) {
  using M = Matrices<Tile, Stride>;
  using Vec = Lanes<Block>;
  constexpr int kA = M::kA;
  for (int tile_x = 0; tile_x < g.tiles_x; ++tile_x) {
    float* tile_out = v_row + tile_x * layout.tile;
    const int y0 = tile_y * Tile * Stride - 1, x0 = tile_x * Tile * Stride - 1;  // padding 1
    for (int block = 0; block < g.channels / Block; ++block) {
      const float* plane = src + static_cast<std::size_t>(block) * g.in_h * g.in_w * Block;
      Vec d[kA][kA];
      for (int i = 0; i < kA; ++i) {
        const int y = y0 + i;
        for (int j = 0; j < kA; ++j) {
          const int x = x0 + j;
          d[i][j] = Vec{};
          if (y >= 0 && y < g.in_h && x >= 0 && x < g.in_w)
            load(d[i][j], plane + (static_cast<std::size_t>(y) * g.in_w + x) * Block);
        }
      }
      Vec t[kA][kA];  // BT d
#pragma GCC unroll 9
      for (int i = 0; i < kA; ++i) {
#pragma GCC unroll 9
        for (int j = 0; j < kA; ++j) {
          Vec acc{};
#pragma GCC unroll 9
          for (int k = 0; k < kA; ++k) {
            if (M::kBT[i][k] != 0) acc += M::kBT[i][k] * d[k][j];
          }
          t[i][j] = acc;
        }
      }
      float* out = tile_out + block * layout.block;
#pragma GCC unroll 9
      for (int i = 0; i < kA; ++i) {
#pragma GCC unroll 9
        for (int j = 0; j < kA; ++j) {  // (BT d) B
          Vec acc{};
#pragma GCC unroll 9
          for (int k = 0; k < kA; ++k) {
            if (M::kBT[j][k] != 0) acc += M::kBT[j][k] * t[i][k];
          }
          store(out + (i * kA + j) * layout.position, acc);
        }
      }
    }
  }
}

// What the output transform does after the bias: the convolution's activation, then, for a fused
// [shortcut], adds what the destination holds and applies the shortcut's activation.
struct OutputActivation {
  LaneActivation activation;
  bool accumulate;
  LaneActivation after_sum;
};

// One row of tiles, every filter block, from `m_row` (M of the row's first tile), plus bias, then
// the activation; with Pool, the max of each 2x2 cell of that (a following 2x2 stride-2 max pool
// on an even map: tiles start at even coordinates, so no cell straddles two tiles), written to
// the pooled map.
template <int Tile, int Stride, int Block, bool Pool>
CLOUDDETECT_INLINED_AVX2 void transform_output_row(const float* m_row, const Geometry& g, int tile_y, TileLayout layout,
                                                   const float* bias, const OutputActivation& stage, float* dst) {
  using M = Matrices<Tile, Stride>;
  using Vec = Lanes<Block>;
  constexpr int kA = M::kA;
  const int out_h = Pool ? g.h / 2 : g.h, out_w = Pool ? g.w / 2 : g.w;
  const LaneActivation& activation = stage.activation;
  const float slope = activation.slope;
  for (int tile_x = 0; tile_x < g.tiles_x; ++tile_x) {
    const float* tile_in = m_row + tile_x * layout.tile;
    for (int block = 0; block < g.filters / Block; ++block) {
      const float* in = tile_in + block * layout.block;
      float* plane = dst + static_cast<std::size_t>(block) * out_h * out_w * Block;
      Vec block_bias;
      load(block_bias, bias + static_cast<std::size_t>(block) * Block);
      Vec t[Tile][kA];  // AT m
#pragma GCC unroll 9
      for (int j = 0; j < kA; ++j) {
        Vec column[kA];
        for (int k = 0; k < kA; ++k) load(column[k], in + (k * kA + j) * layout.position);
#pragma GCC unroll 4
        for (int i = 0; i < Tile; ++i) {
          Vec acc{};
#pragma GCC unroll 9
          for (int k = 0; k < kA; ++k) {
            if (M::kAT[i][k] != 0) acc += M::kAT[i][k] * column[k];
          }
          t[i][j] = acc;
        }
      }
      // (AT m) A + bias, activated; stored at once (only the outputs inside the map: skipping the
      // others first is measurably faster on 13x13 maps), or kept for the pool. The stored path
      // writes the activation out instead of calling activate(): 5-10% faster (AVX-512 layout,
      // 13x13 and 26x26 maps, interleaved microbenchmark).
      Vec y[Pool ? Tile : 1][Pool ? Tile : 1];
#pragma GCC unroll 4
      for (int i = 0; i < Tile; ++i) {
#pragma GCC unroll 4
        for (int j = 0; j < Tile; ++j) {
          const int oy = tile_y * Tile + i, ox = tile_x * Tile + j;
          if (!Pool && (oy >= out_h || ox >= out_w)) continue;
          Vec acc = block_bias;
#pragma GCC unroll 9
          for (int k = 0; k < kA; ++k) {
            if (M::kAT[j][k] != 0) acc += M::kAT[j][k] * t[i][k];
          }
          if constexpr (Pool) {
            activate<Block>(acc, activation);  // (no fused shortcut with a pool: checked by the caller)
            y[i][j] = acc;
          } else {
            float* o = plane + (static_cast<std::size_t>(oy) * out_w + ox) * Block;
            if (activation.logistic || activation.mish) {
              activate<Block>(acc, activation);
            } else {
              acc = acc > 0 ? acc : acc * slope;
            }
            if (stage.accumulate) {
              Vec held;
              load(held, o);
              acc += held;
              activate<Block>(acc, stage.after_sum);
            }
            store(o, acc);
          }
        }
      }
      if constexpr (Pool) {
#pragma GCC unroll 2
        for (int i = 0; i < Tile; i += 2) {
          const int oy = (tile_y * Tile + i) / 2;
#pragma GCC unroll 2
          for (int j = 0; j < Tile; j += 2) {
            const int ox = (tile_x * Tile + j) / 2;
            if (oy >= out_h || ox >= out_w) continue;
            const Vec top = y[i][j] > y[i][j + 1] ? y[i][j] : y[i][j + 1];
            const Vec bottom = y[i + 1][j] > y[i + 1][j + 1] ? y[i + 1][j] : y[i + 1][j + 1];
            store(plane + (static_cast<std::size_t>(oy) * out_w + ox) * Block, top > bottom ? top : bottom);
          }
        }
      }
    }
  }
}

using InputRow = void (*)(const float*, const Geometry&, int, TileLayout, float*);
using OutputRow = void (*)(const float*, const Geometry&, int, TileLayout, const float*, const OutputActivation&,
                           float*);

// The transforms compiled for AVX2, and the 16-channel ones also for AVX-512.
template <int Tile, int Stride, int Block>
CLOUDDETECT_AVX2 void input_row_avx2(const float* src, const Geometry& g, int tile_y, TileLayout layout, float* v_row) {
  transform_input_row<Tile, Stride, Block>(src, g, tile_y, layout, v_row);
}
template <int Tile, int Stride>
CLOUDDETECT_AVX512 void input_row_avx512(const float* src, const Geometry& g, int tile_y, TileLayout layout,
                                         float* v_row) {
  transform_input_row<Tile, Stride, 16>(src, g, tile_y, layout, v_row);
}
template <int Tile, int Stride, int Block, bool Pool>
CLOUDDETECT_AVX2 void output_row_avx2(const float* m_row, const Geometry& g, int tile_y, TileLayout layout,
                                      const float* bias, const OutputActivation& stage, float* dst) {
  transform_output_row<Tile, Stride, Block, Pool>(m_row, g, tile_y, layout, bias, stage, dst);
}
template <int Tile, int Stride, bool Pool>
CLOUDDETECT_AVX512 void output_row_avx512(const float* m_row, const Geometry& g, int tile_y, TileLayout layout,
                                          const float* bias, const OutputActivation& stage, float* dst) {
  transform_output_row<Tile, Stride, 16, Pool>(m_row, g, tile_y, layout, bias, stage, dst);
}

template <int Tile, int Stride>
InputRow input_row(int block) {
  if (block == 8) return input_row_avx2<Tile, Stride, 8>;
  return has_avx512() ? input_row_avx512<Tile, Stride> : input_row_avx2<Tile, Stride, 16>;
}
InputRow input_row(int tile, int stride, int block) {
  if (stride == 2)
    return tile == 2 ? input_row<2, 2>(block) : tile == 3 ? input_row<3, 2>(block) : input_row<4, 2>(block);
  return tile == 2 ? input_row<2, 1>(block) : tile == 3 ? input_row<3, 1>(block) : input_row<4, 1>(block);
}
template <int Tile, int Stride, bool Pool>
OutputRow output_row(int block) {
  if (block == 8) return output_row_avx2<Tile, Stride, 8, Pool>;
  return has_avx512() ? output_row_avx512<Tile, Stride, Pool> : output_row_avx2<Tile, Stride, 16, Pool>;
}
// Odd tiles and stride 2: no fused pool (checked by the caller).
OutputRow output_row(int tile, int stride, int block, bool pool) {
  if (stride == 2) {
    return tile == 2   ? output_row<2, 2, false>(block)
           : tile == 3 ? output_row<3, 2, false>(block)
                       : output_row<4, 2, false>(block);
  }
  if (tile == 2) return pool ? output_row<2, 1, true>(block) : output_row<2, 1, false>(block);
  if (tile == 3) return output_row<3, 1, false>(block);
  return pool ? output_row<4, 1, true>(block) : output_row<4, 1, false>(block);
}

int patch_size(int tile, int stride) { return (tile - 1) * stride + 3; }

}  // namespace

std::size_t winograd_block_bytes() {
  static const std::size_t bytes = [] {
    const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return l2 > 0 ? std::max<std::size_t>(static_cast<std::size_t>(l2) / 2, 64 * 1024) : 512 * 1024;
  }();
  return bytes;
}

bool own_winograd_fits(const Plan& plan, const darknet::Layer& layer) {
  const auto& p = layer.convolutional;
  const int block = channel_block(plan.activation_desc({1, layer.input.c, layer.input.h, layer.input.w}));
  const bool same_map = layer.output.h == layer.input.h && layer.output.w == layer.input.w;
  const bool halved_map = layer.output.h == (layer.input.h + 1) / 2 && layer.output.w == (layer.input.w + 1) / 2;
  return p.size == 3 && ((p.stride == 1 && same_map) || (p.stride == 2 && halved_map)) && p.padding == 1 &&
         p.groups == 1 && (block == 8 || block == 16) && layer.input.c % block == 0 && p.filters % block == 0 &&
         has_avx2_fma();
}

namespace {

void check_own_winograd(const Plan& plan, const darknet::Layer& layer, int tile, bool pool) {
  if (tile < 2 || tile > 4) throw dnnl::error(dnnl_invalid_arguments, "Winograd tile must be 2, 3 or 4");
  if (pool && (tile % 2 != 0 || layer.convolutional.stride != 1)) {
    throw dnnl::error(dnnl_invalid_arguments, "a fused 2x2 pool needs an even tile and stride 1");
  }
  if (!own_winograd_fits(plan, layer)) throw dnnl::error(dnnl_invalid_arguments, "layer does not fit our Winograd");
  if (pool && (layer.output.h % 2 != 0 || layer.output.w % 2 != 0)) {
    throw dnnl::error(dnnl_invalid_arguments, "a fused 2x2 pool needs an even map");
  }
}

// Blocks of tile rows for transformed weights up to this size (docs/PERFORMANCE.md, "Blocks of
// tile rows, and concatenations as copies").
constexpr std::size_t kBlockedMaxWeightBytes = 3 << 20;

// Tile rows per block: blocks of whole tile rows are transformed, multiplied and transformed back
// one after the other, so that a block's V and M stay in the L2 cache instead of going through
// memory in between. At least one row per thread: each transform runs one row per thread.
int block_rows(const Geometry& g) {
  const std::size_t block_bytes = winograd_block_bytes();
  const std::size_t row_bytes =
      static_cast<std::size_t>(g.positions) * g.tiles_x * (g.channels + g.filters) * sizeof(float);
  // Every block reads all the transformed weights again: worth it for a few MB of them (64 -> 128
  // channels); above, oneDNN's matmul on fewer rows costs more than V and M going through memory.
  const int threads = std::max(1, omp_get_max_threads());
  const std::size_t weight_bytes = static_cast<std::size_t>(g.positions) * g.channels * g.filters * sizeof(float);
  if (weight_bytes > kBlockedMaxWeightBytes) return g.tiles_y;
  return std::clamp(static_cast<int>(block_bytes / row_bytes), std::min(threads, g.tiles_y), g.tiles_y);
}

Geometry geometry_of(const darknet::Layer& layer, int tile, const memory::desc& input) {
  return Geometry{layer.input.c,
                  layer.output.c,
                  layer.output.h,
                  layer.output.w,
                  (layer.output.w + tile - 1) / tile,
                  (layer.output.h + tile - 1) / tile,
                  patch_size(tile, layer.convolutional.stride) * patch_size(tile, layer.convolutional.stride),
                  channel_block(input),
                  layer.input.h,
                  layer.input.w};
}

// How a block's products V x U = M run: as a oneDNN batched matmul, or our panel kernels
// (panel_product.h).
enum class Product { kMatmul, kPanels };

// One block's products, and where V and M keep a tile.
struct BlockProduct {
  dnnl::primitive_desc pd;  // empty for kPanels
  memory::desc v, m;
  TileLayout v_layout, m_layout;
};

// From these sizes of transformed weights up, our panels multiply faster than oneDNN's matmul,
// which packs the weights again on every call (docs/PERFORMANCE.md, "Winograd's products"). Its
// AVX-512 matmul is the faster on all but the largest.
constexpr std::size_t kPanelsMinWeightBytesAvx2 = 8 << 20;
constexpr std::size_t kPanelsMinWeightBytesAvx512 = 32 << 20;

bool avx512_panels(const Geometry& g) { return g.block == 16 && has_avx512(); }

Product product_of(const Geometry& g) {
  const bool avx512 = avx512_panels(g);
  const std::size_t weight_bytes = static_cast<std::size_t>(g.positions) * g.channels * g.filters * sizeof(float);
  const std::size_t min_bytes = avx512 ? kPanelsMinWeightBytesAvx512 : kPanelsMinWeightBytesAvx2;
  return weight_bytes >= min_bytes && g.filters % panel_columns(avx512) == 0 ? Product::kPanels : Product::kMatmul;
}

// As a batched matmul or our panels: tile-major V[tile][position][channel] (and M likewise), so each
// transform streams through memory, read as strided [position][tile][channel]. (Position-major,
// which makes the matmul's rows contiguous, is slower: docs/PERFORMANCE.md.)
memory::desc tile_major(const Geometry& g, int rows, memory::dim width) {
  return memory::desc({g.positions, static_cast<memory::dim>(rows) * g.tiles_x, width}, memory::data_type::f32,
                      memory::dims{width, g.positions * width, 1});
}

TileLayout tile_major_layout(const Geometry& g, std::size_t width) {
  return TileLayout{g.positions * width, width, static_cast<std::size_t>(g.block)};
}

BlockProduct block_matmul(const Plan& plan, const Geometry& g, int rows) {
  const memory::desc v = tile_major(g, rows, g.channels), m = tile_major(g, rows, g.filters);
  return BlockProduct{
      dnnl::matmul::primitive_desc(dnnl::matmul::desc(v, any_desc({g.positions, g.channels, g.filters}), m),
                                   Plan::attr(), plan.engine()),
      v, m, tile_major_layout(g, g.channels), tile_major_layout(g, g.filters)};
}

BlockProduct block_panels(const Geometry& g, int rows) {
  return BlockProduct{{},
                      tile_major(g, rows, g.channels),
                      tile_major(g, rows, g.filters),
                      tile_major_layout(g, g.channels),
                      tile_major_layout(g, g.filters)};
}

BlockProduct block_product(const Plan& plan, const Geometry& g, int rows) {
  return product_of(g) == Product::kPanels ? block_panels(g, rows) : block_matmul(plan, g, rows);
}

// The layout the products want the transformed weights in, and their [position][channel][filter]
// order described in that layout's dimensions: for the panels [position][panel][channel][column].
struct WeightLayouts {
  memory::desc plain, product;
};

WeightLayouts weight_layouts(Product kind, const Geometry& g, const BlockProduct& full, const BlockProduct& last) {
  if (kind == Product::kPanels) {
    const memory::dim columns = panel_columns(avx512_panels(g)), panels = g.filters / columns;
    const memory::dims dims{g.positions, panels, g.channels, columns};
    return {memory::desc(dims, memory::data_type::f32, memory::dims{g.channels * g.filters, columns, g.filters, 1}),
            plain_desc(dims)};
  }
  const memory::desc product = full.pd.weights_desc();
  if (last.pd.weights_desc() != product) {
    throw dnnl::error(dnnl_unimplemented, "Winograd blocks want different weight layouts");
  }
  return {plain_desc(product.dims()), product};
}

// A block's product as it runs: the primitive (none for the panels), V and M as memories, their layouts.
struct BlockStep {
  dnnl::primitive primitive;
  memory v, m;
  TileLayout v_layout, m_layout;
};

// The scratchpad the larger of two blocks' primitives needs (none for the panels).
memory::desc scratchpad_of(const BlockProduct& full, const BlockProduct& last) {
  if (!full.pd) return {};
  return full.pd.scratchpad_desc().get_size() >= last.pd.scratchpad_desc().get_size() ? full.pd.scratchpad_desc()
                                                                                      : last.pd.scratchpad_desc();
}

// One block's products on the plan's stream, or with our panels.
void multiply_block(const BlockStep& step, const Geometry& g, int rows, const memory& weights, dnnl::stream& stream,
                    const memory& scratchpad) {
  if (!step.primitive) {
    const PanelProduct product{
        g.positions,        rows * g.tiles_x,       g.channels,        g.filters, step.v_layout.position,
        step.v_layout.tile, step.m_layout.position, step.m_layout.tile};
    multiply_panels(product, static_cast<const float*>(step.v.get_data_handle()),
                    static_cast<const float*>(weights.get_data_handle()), static_cast<float*>(step.m.get_data_handle()),
                    avx512_panels(g));
    return;
  }
  // The C API with arguments on the stack: the C++ execute() builds a hash map per call.
  const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, step.v.get()},
                                  {DNNL_ARG_WEIGHTS, weights.get()},
                                  {DNNL_ARG_DST, step.m.get()},
                                  {DNNL_ARG_SCRATCHPAD, scratchpad.get()}};
  dnnl::error::wrap_c_api(dnnl_primitive_execute(step.primitive.get(), stream.get(), 4, args),
                          "could not execute a Winograd block's product");
  stream.wait();
}

std::string step_name(int tile, int stride, bool pool, Product kind) {
  return "clouddetect:winograd_" + std::to_string(tile) + "x3" + (stride == 2 ? "s2" : "") +
         (pool ? "+max_pool_2x2" : "") + (kind == Product::kPanels ? "/panels" : "");
}

}  // namespace

bool own_winograd_panels(const Plan& plan, const darknet::Layer& layer, int tile) {
  const memory::desc input = plan.activation_desc({1, layer.input.c, layer.input.h, layer.input.w});
  return product_of(geometry_of(layer, tile, input)) == Product::kPanels;
}

memory make_own_winograd(Plan& plan, const PreparedConvolution& prepared, const memory& src, int tile,
                         const memory* into, bool pool, const darknet::Activation* accumulate) {
  const darknet::Layer& layer = prepared.layer();
  check_own_winograd(plan, layer, tile, pool);
  if (accumulate && (pool || !into)) {
    throw dnnl::error(dnnl_invalid_arguments, "a fused shortcut needs the destination it adds to, and no pool");
  }
  const memory input = plan.reorder_to(src, plan.activation_desc({1, layer.input.c, layer.input.h, layer.input.w}));
  const Geometry g = geometry_of(layer, tile, input.get_desc());
  const int rows_per_block = block_rows(g);
  const int blocks = (g.tiles_y + rows_per_block - 1) / rows_per_block;
  const int last_rows = g.tiles_y - (blocks - 1) * rows_per_block;
  const Product kind = product_of(g);
  const BlockProduct full = block_product(plan, g, rows_per_block), last = block_product(plan, g, last_rows);
  const WeightLayouts layouts = weight_layouts(kind, g, full, last);
  std::shared_ptr<const float> weights =
      prepared.winograd_weights(tile, layouts.plain, layouts.product, plan.engine(), plan.stream());
  plan.keep(weights);
  const memory weights_memory(layouts.product, plan.engine(), const_cast<float*>(weights.get()));
  const memory v = plan.new_memory(full.v), m = plan.new_memory(full.m);
  const auto primitive = [](const BlockProduct& p) { return p.pd ? dnnl::primitive(p.pd) : dnnl::primitive(); };
  const auto steps = std::make_shared<const std::array<BlockStep, 2>>(std::array<BlockStep, 2>{
      BlockStep{primitive(full), v, m, full.v_layout, full.m_layout},
      BlockStep{primitive(last), plan.new_view(v, last.v), plan.new_view(m, last.m), last.v_layout, last.m_layout}});
  const int out_h = pool ? g.h / 2 : g.h, out_w = pool ? g.w / 2 : g.w;
  const memory::desc dst_md = plan.activation_desc({1, g.filters, out_h, out_w});
  const memory dst = into ? *into : plan.new_memory(dst_md);
  if (dst.get_desc() != dst_md) throw dnnl::error(dnnl_invalid_arguments, "Winograd output layout mismatch");

  const OutputActivation activation{LaneActivation::of(layer.convolutional.activation), accumulate != nullptr,
                                    LaneActivation::of(accumulate ? *accumulate : darknet::Activation::kLinear)};
  const float* bias = prepared.bias().data();
  const int stride = layer.convolutional.stride;
  const InputRow input_fn = input_row(tile, stride, g.block);
  const OutputRow output_fn = output_row(tile, stride, g.block, pool);
  dnnl::stream stream = plan.stream();
  plan.add_own(
      step_name(tile, stride, pool, kind),
      [=](const memory& scratchpad) mutable {
        const auto* in = static_cast<const float*>(input.get_data_handle());
        auto* v_data = static_cast<float*>(v.get_data_handle());
        auto* m_data = static_cast<float*>(m.get_data_handle());
        auto* out = static_cast<float*>(dst.get_data_handle());
        for (int b = 0; b < blocks; ++b) {
          const int first = b * rows_per_block, rows = b + 1 == blocks ? last_rows : rows_per_block;
          const BlockStep& step = (*steps)[b + 1 == blocks ? 1 : 0];
          const std::size_t v_row = g.tiles_x * step.v_layout.tile, m_row = g.tiles_x * step.m_layout.tile;
#pragma omp parallel for schedule(static)
          for (int r = 0; r < rows; ++r) input_fn(in, g, first + r, step.v_layout, v_data + r * v_row);
          multiply_block(step, g, rows, weights_memory, stream, scratchpad);
#pragma omp parallel for schedule(static)
          for (int r = 0; r < rows; ++r) {
            output_fn(m_data + r * m_row, g, first + r, step.m_layout, bias, activation, out);
          }
        }
      },
      {input, v, m, dst}, scratchpad_of(full, last));
  return dst;
}

}  // namespace clouddetect::onednn
