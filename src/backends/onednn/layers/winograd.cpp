#include "backends/onednn/layers/winograd.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

#include "backends/onednn/layers/lanes.h"

namespace clouddetect::onednn {

using dnnl::memory;

namespace {

// Lavin & Gray's matrices: output Y = AT [(G g GT) . (BT d B)] A for a (tile + 2)^2 input patch d
// and a 3x3 filter g, the correlation a convolution layer computes.
template <int Tile>
struct Matrices;

template <>
struct Matrices<2> {
  static constexpr int kA = 4;
  static constexpr float kBT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr float kAT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
  static constexpr double kG[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
};

template <>
struct Matrices<4> {
  static constexpr int kA = 6;
  static constexpr float kBT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                      {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr float kAT[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
  static constexpr double kG[6][3] = {{1.0 / 4, 0, 0},
                                      {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                      {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                      {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                      {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                      {0, 0, 1}};
};

// Transformed tiles are stored tile-major, V[tile][position][channel] (and M likewise), so each
// transform streams through memory; the matmul reads them as strided [position][tile][channel].
struct Geometry {
  int channels, filters, h, w, tiles_x, tiles_y, positions, block;
  int tiles() const { return tiles_x * tiles_y; }
};

// The loops below have compile-time trip counts and constant matrices: unrolled, the zero
// coefficients vanish and the +-1 ones become additions. A value is one channel block (lanes.h).

// One row of tiles, every channel block, into V.
template <int Tile, int Block>
CLOUDDETECT_AVX2 void transform_input_row(const float* src, const Geometry& g, int tile_y, float* v) {
  using M = Matrices<Tile>;
  using Vec = Lanes<Block>;
  constexpr int kA = M::kA;
  for (int tile_x = 0; tile_x < g.tiles_x; ++tile_x) {
    float* tile_out = v + static_cast<std::size_t>(tile_y * g.tiles_x + tile_x) * kA * kA * g.channels;
    const int y0 = tile_y * Tile - 1, x0 = tile_x * Tile - 1;  // padding 1
    for (int block = 0; block < g.channels / Block; ++block) {
      const float* plane = src + static_cast<std::size_t>(block) * g.h * g.w * Block;
      Vec d[kA][kA];
      for (int i = 0; i < kA; ++i) {
        const int y = y0 + i;
        for (int j = 0; j < kA; ++j) {
          const int x = x0 + j;
          d[i][j] = Vec{};
          if (y >= 0 && y < g.h && x >= 0 && x < g.w)
            load(d[i][j], plane + (static_cast<std::size_t>(y) * g.w + x) * Block);
        }
      }
      Vec t[kA][kA];  // BT d
#pragma GCC unroll 6
      for (int i = 0; i < kA; ++i) {
#pragma GCC unroll 6
        for (int j = 0; j < kA; ++j) {
          Vec acc{};
#pragma GCC unroll 6
          for (int k = 0; k < kA; ++k) {
            if (M::kBT[i][k] != 0) acc += M::kBT[i][k] * d[k][j];
          }
          t[i][j] = acc;
        }
      }
      float* out = tile_out + static_cast<std::size_t>(block) * Block;
#pragma GCC unroll 6
      for (int i = 0; i < kA; ++i) {
#pragma GCC unroll 6
        for (int j = 0; j < kA; ++j) {  // (BT d) B
          Vec acc{};
#pragma GCC unroll 6
          for (int k = 0; k < kA; ++k) {
            if (M::kBT[j][k] != 0) acc += M::kBT[j][k] * t[i][k];
          }
          store(out + static_cast<std::size_t>(i * kA + j) * g.channels, acc);
        }
      }
    }
  }
}

// One row of tiles, every filter block, from M, plus bias, then the activation: v > 0 ? v : slope * v
// (slope 1 linear, 0 relu, 0.1 leaky), or logistic.
template <int Tile, int Block>
CLOUDDETECT_AVX2 void transform_output_row(const float* m, const Geometry& g, int tile_y, const float* bias,
                                           float slope, bool logistic, float* dst) {
  using M = Matrices<Tile>;
  using Vec = Lanes<Block>;
  constexpr int kA = M::kA;
  for (int tile_x = 0; tile_x < g.tiles_x; ++tile_x) {
    const float* tile_in = m + static_cast<std::size_t>(tile_y * g.tiles_x + tile_x) * kA * kA * g.filters;
    for (int block = 0; block < g.filters / Block; ++block) {
      const float* in = tile_in + static_cast<std::size_t>(block) * Block;
      float* plane = dst + static_cast<std::size_t>(block) * g.h * g.w * Block;
      Vec block_bias;
      load(block_bias, bias + static_cast<std::size_t>(block) * Block);
      Vec t[Tile][kA];  // AT m
#pragma GCC unroll 6
      for (int j = 0; j < kA; ++j) {
        Vec column[kA];
        for (int k = 0; k < kA; ++k) load(column[k], in + static_cast<std::size_t>(k * kA + j) * g.filters);
#pragma GCC unroll 4
        for (int i = 0; i < Tile; ++i) {
          Vec acc{};
#pragma GCC unroll 6
          for (int k = 0; k < kA; ++k) {
            if (M::kAT[i][k] != 0) acc += M::kAT[i][k] * column[k];
          }
          t[i][j] = acc;
        }
      }
#pragma GCC unroll 4
      for (int i = 0; i < Tile; ++i) {
        const int y = tile_y * Tile + i;
#pragma GCC unroll 4
        for (int j = 0; j < Tile; ++j) {  // (AT m) A
          const int x = tile_x * Tile + j;
          if (y >= g.h || x >= g.w) continue;
          Vec acc = block_bias;
#pragma GCC unroll 6
          for (int k = 0; k < kA; ++k) {
            if (M::kAT[j][k] != 0) acc += M::kAT[j][k] * t[i][k];
          }
          float* o = plane + (static_cast<std::size_t>(y) * g.w + x) * Block;
          if (logistic) {
            store(o, acc);
            for (int l = 0; l < Block; ++l) o[l] = 1.0f / (1.0f + std::exp(-o[l]));
          } else {
            const Vec activated = acc > 0 ? acc : acc * slope;
            store(o, activated);
          }
        }
      }
    }
  }
}

using InputRow = void (*)(const float*, const Geometry&, int, float*);
using OutputRow = void (*)(const float*, const Geometry&, int, const float*, float, bool, float*);

template <int Tile>
InputRow input_row(int block) {
  return block == 16 ? transform_input_row<Tile, 16> : transform_input_row<Tile, 8>;
}
template <int Tile>
OutputRow output_row(int block) {
  return block == 16 ? transform_output_row<Tile, 16> : transform_output_row<Tile, 8>;
}

}  // namespace

bool own_winograd_fits(const Plan& plan, const darknet::Layer& layer) {
  const auto& p = layer.convolutional;
  const int block = channel_block(plan.activation_desc({1, layer.input.c, layer.input.h, layer.input.w}));
  return p.size == 3 && p.stride == 1 && p.padding == 1 && p.groups == 1 && (block == 8 || block == 16) &&
         layer.input.c % block == 0 && p.filters % block == 0 && layer.output.h == layer.input.h &&
         layer.output.w == layer.input.w && has_avx2_fma();
}

std::vector<float> winograd_weights(const std::vector<float>& oihw, int filters, int channels, int tile) {
  const int a = tile + 2;
  const double* g = tile == 2 ? &Matrices<2>::kG[0][0] : &Matrices<4>::kG[0][0];
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

memory make_own_winograd(Plan& plan, const PreparedConvolution& prepared, const memory& src, int tile,
                         const memory* into) {
  const darknet::Layer& layer = prepared.layer();
  if (tile != 2 && tile != 4) throw dnnl::error(dnnl_invalid_arguments, "Winograd tile must be 2 or 4");
  if (!own_winograd_fits(plan, layer)) throw dnnl::error(dnnl_invalid_arguments, "layer does not fit our Winograd");
  const memory input = plan.reorder_to(src, plan.activation_desc({1, layer.input.c, layer.input.h, layer.input.w}));
  const Geometry g{layer.input.c,
                   layer.output.c,
                   layer.output.h,
                   layer.output.w,
                   (layer.output.w + tile - 1) / tile,
                   (layer.output.h + tile - 1) / tile,
                   (tile + 2) * (tile + 2),
                   channel_block(input.get_desc())};
  const int block = g.block;
  // [position][tile][channel] views of the tile-major buffers.
  auto tile_major = [&](memory::dim width) {
    return memory::desc({g.positions, g.tiles(), width}, memory::data_type::f32,
                        memory::dims{width, g.positions * width, 1});
  };
  const memory::desc v_md = tile_major(g.channels), m_md = tile_major(g.filters);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(v_md, any_desc({g.positions, g.channels, g.filters}), m_md),
                                        Plan::attr(), plan.engine());
  std::shared_ptr<const float> weights =
      prepared.winograd_weights(tile, pd.weights_desc(), plan.engine(), plan.stream());
  plan.keep(weights);
  const memory weights_memory(pd.weights_desc(), plan.engine(), const_cast<float*>(weights.get()));
  const memory v = plan.new_memory(v_md);
  const memory m = plan.new_memory(m_md);
  const memory::desc dst_md = plan.activation_desc({1, g.filters, g.h, g.w});
  const memory dst = into ? *into : plan.new_memory(dst_md);
  if (dst.get_desc() != dst_md) throw dnnl::error(dnnl_invalid_arguments, "Winograd output layout mismatch");

  const std::string name = "clouddetect:winograd_" + std::to_string(tile) + "x3_";
  const InputRow input_fn = tile == 2 ? input_row<2>(block) : input_row<4>(block);
  plan.add_own(name + "input",
               [input_fn, g, input, v] {
                 const auto* in = static_cast<const float*>(input.get_data_handle());
                 auto* out = static_cast<float*>(v.get_data_handle());
#pragma omp parallel for schedule(static)
                 for (int row = 0; row < g.tiles_y; ++row) input_fn(in, g, row, out);
               },
               {input, v});
  plan.add(dnnl::matmul(pd), {{DNNL_ARG_SRC, v}, {DNNL_ARG_WEIGHTS, weights_memory}, {DNNL_ARG_DST, m}},
           pd.scratchpad_desc());

  const auto activation = layer.convolutional.activation;
  const float slope = activation == darknet::Activation::kLeaky  ? kLeakySlope
                      : activation == darknet::Activation::kRelu ? 0.0f
                                                                 : 1.0f;
  const bool logistic = activation == darknet::Activation::kLogistic;
  const float* bias = prepared.bias().data();
  const OutputRow output_fn = tile == 2 ? output_row<2>(block) : output_row<4>(block);
  plan.add_own(name + "output",
               [output_fn, g, m, dst, bias, slope, logistic] {
                 const auto* in = static_cast<const float*>(m.get_data_handle());
                 auto* out = static_cast<float*>(dst.get_data_handle());
#pragma omp parallel for schedule(static)
                 for (int row = 0; row < g.tiles_y; ++row) output_fn(in, g, row, bias, slope, logistic, out);
               },
               {m, dst});
  return dst;
}

}  // namespace clouddetect::onednn
