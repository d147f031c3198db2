#include "backends/onednn/kernels/input_convolution.h"

#include <algorithm>
#include <cstddef>

#include "backends/onednn/kernels/lanes.h"

namespace clouddetect::onednn {

using dnnl::memory;

namespace {

constexpr int kBlock = 8;        // nChw8c
constexpr int kMaxChannels = 4;  // input channels: the patch below lives on the stack

struct Geometry {
  int channels, filters, h, w;  // of the convolution (input and output maps are h x w)
};

// One pooled output pixel (oy, ox), 16 filters from `first_block`: the 2x2 convolution outputs under
// it, each from a 4x4 patch per channel, then bias, activation and their max. 8 accumulators: every
// broadcast input feeds two FMAs and every weight load four. Inside the map the patch is read in
// place; on its border (Border) from a zero-padded copy.
template <bool Border>
CLOUDDETECT_AVX2 inline void pooled_pixel(const float* src, const Geometry& g, const float* weights, const float* bias,
                                          LaneActivation activation, int first_block, int oy, int ox, float* dst) {
  using Vec = Lanes<kBlock>;
  const int y0 = 2 * oy - 1, x0 = 2 * ox - 1;  // the patch's top left, padding 1
  float padded[kMaxChannels][4][4];
  if constexpr (Border) {
    for (int c = 0; c < g.channels; ++c) {
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) {
          const int y = y0 + i, x = x0 + j;
          padded[c][i][j] =
              y >= 0 && y < g.h && x >= 0 && x < g.w ? src[(static_cast<std::size_t>(c) * g.h + y) * g.w + x] : 0.0f;
        }
      }
    }
  }
  Vec acc[2][2][2];  // [row][column][filter block]
  for (int b = 0; b < 2; ++b) {
    Vec bias_lanes;
    load(bias_lanes, bias + (first_block + b) * kBlock);
    for (int r = 0; r < 2; ++r) {
      for (int s = 0; s < 2; ++s) acc[r][s][b] = bias_lanes;
    }
  }
  // Weights in Ohwi8o: [filter block][ky][kx][channel][8 filters].
  const std::size_t block_stride = static_cast<std::size_t>(g.channels) * 9 * kBlock;
  const float* w0 = weights + first_block * block_stride;
  const float* w1 = w0 + block_stride;
  for (int c = 0; c < g.channels; ++c) {
    const float* plane = Border ? &padded[c][0][0] : src + (static_cast<std::size_t>(c) * g.h + y0) * g.w + x0;
    const int row_stride = Border ? 4 : g.w;
#pragma GCC unroll 3
    for (int ky = 0; ky < 3; ++ky) {
#pragma GCC unroll 3
      for (int kx = 0; kx < 3; ++kx) {
        Vec a, b;
        const std::size_t at = ((ky * 3 + kx) * static_cast<std::size_t>(g.channels) + c) * kBlock;
        load(a, w0 + at);
        load(b, w1 + at);
#pragma GCC unroll 2
        for (int r = 0; r < 2; ++r) {
#pragma GCC unroll 2
          for (int s = 0; s < 2; ++s) {
            const float x = plane[(r + ky) * row_stride + s + kx];
            acc[r][s][0] += x * a;
            acc[r][s][1] += x * b;
          }
        }
      }
    }
  }
  const int out_h = g.h / 2, out_w = g.w / 2;
  for (int b = 0; b < 2; ++b) {
    for (int r = 0; r < 2; ++r) {
      for (int s = 0; s < 2; ++s) activate<kBlock>(acc[r][s][b], activation);
    }
    const Vec top = acc[0][0][b] > acc[0][1][b] ? acc[0][0][b] : acc[0][1][b];
    const Vec bottom = acc[1][0][b] > acc[1][1][b] ? acc[1][0][b] : acc[1][1][b];
    float* plane = dst + static_cast<std::size_t>(first_block + b) * out_h * out_w * kBlock;
    store(plane + (static_cast<std::size_t>(oy) * out_w + ox) * kBlock, top > bottom ? top : bottom);
  }
}

// Pooled rows [first, first + rows), every filter.
CLOUDDETECT_AVX2 void pooled_rows(const float* src, const Geometry& g, const float* weights, const float* bias,
                                  LaneActivation activation, int first, int rows, float* dst) {
  const int out_h = g.h / 2, out_w = g.w / 2;
  for (int oy = first; oy < first + rows; ++oy) {
    const bool border_row = oy == 0 || oy == out_h - 1;
    for (int first_block = 0; first_block < g.filters / kBlock; first_block += 2) {
      pooled_pixel<true>(src, g, weights, bias, activation, first_block, oy, 0, dst);
      for (int ox = 1; ox < out_w - 1; ++ox) {
        if (border_row) {
          pooled_pixel<true>(src, g, weights, bias, activation, first_block, oy, ox, dst);
        } else {
          pooled_pixel<false>(src, g, weights, bias, activation, first_block, oy, ox, dst);
        }
      }
      if (out_w > 1) pooled_pixel<true>(src, g, weights, bias, activation, first_block, oy, out_w - 1, dst);
    }
  }
}

}  // namespace

bool input_convolution_pooled_fits(const Plan& plan, const darknet::Layer& conv) {
  const auto& p = conv.convolutional;
  const memory::desc dst_md = plan.activation_desc({1, conv.output.c, conv.output.h, conv.output.w});
  return conv.type == darknet::LayerType::kConvolutional && p.size == 3 && p.stride == 1 && p.padding == 1 &&
         p.groups == 1 && conv.input.c <= kMaxChannels && p.filters % (2 * kBlock) == 0 &&
         conv.output.h == conv.input.h && conv.output.w == conv.input.w && conv.output.h % 2 == 0 &&
         conv.output.w % 2 == 0 && channel_block(dst_md) == kBlock && has_avx2_fma();
}

memory make_input_convolution_pooled(Plan& plan, const PreparedConvolution& prepared, const memory& src) {
  const darknet::Layer& layer = prepared.layer();
  const Geometry g{layer.input.c, layer.output.c, layer.output.h, layer.output.w};
  const memory input = plan.reorder_to(src, plain_desc({1, g.channels, g.h, g.w}));
  const memory::desc weights_md({g.filters, g.channels, 3, 3}, memory::data_type::f32, memory::format_tag::Ohwi8o);
  std::shared_ptr<const float> weights = prepared.weights(weights_md, plan.engine(), plan.stream());
  plan.keep(weights);
  const memory dst = plan.new_memory(plan.activation_desc({1, g.filters, g.h / 2, g.w / 2}));
  const float* weight_data = weights.get();
  const float* bias = prepared.bias().data();
  const LaneActivation activation = LaneActivation::of(layer.convolutional.activation);
  plan.add_own("clouddetect:input_convolution+max_pool_2x2",
               [g, input, dst, weight_data, bias, activation] {
                 const auto* in = static_cast<const float*>(input.get_data_handle());
                 auto* out = static_cast<float*>(dst.get_data_handle());
                 constexpr int kBand = 4;  // pooled rows per task
                 const int bands = (g.h / 2 + kBand - 1) / kBand;
#pragma omp parallel for schedule(static)
                 for (int band = 0; band < bands; ++band) {
                   pooled_rows(in, g, weight_data, bias, activation, band * kBand,
                               std::min(kBand, g.h / 2 - band * kBand), out);
                 }
               },
               {input, dst});
  return dst;
}

}  // namespace clouddetect::onednn
