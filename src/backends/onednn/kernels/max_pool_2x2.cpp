#include "backends/onednn/kernels/max_pool_2x2.h"

#include <algorithm>
#include <cstddef>

#include "backends/onednn/kernels/lanes.h"

namespace clouddetect::onednn {

using dnnl::memory;

namespace {

// yolov3-tiny's 2x2 stride-2 pools on even maps, in a blocked fp32 layout: the max of four
// channel-block vectors per output pixel (oneDNN 2.6's pooling kernel is compute-bound on these
// maps).
template <int Block>
CLOUDDETECT_AVX2 void max_pool_2x2_rows(const float* src, int h, int w, int block, int first_row, int rows,
                                        float* dst) {
  using Vec = Lanes<Block>;
  const float* in_plane = src + static_cast<std::size_t>(block) * h * w * Block;
  float* out_plane = dst + static_cast<std::size_t>(block) * (h / 2) * (w / 2) * Block;
  for (int oy = first_row; oy < first_row + rows; ++oy) {
    const float* top = in_plane + static_cast<std::size_t>(2 * oy) * w * Block;
    const float* bottom = top + static_cast<std::size_t>(w) * Block;
    float* out = out_plane + static_cast<std::size_t>(oy) * (w / 2) * Block;
    for (int ox = 0; ox < w / 2; ++ox) {
      Vec a, b, c, d;
      load(a, top + 2 * ox * Block);
      load(b, top + (2 * ox + 1) * Block);
      load(c, bottom + 2 * ox * Block);
      load(d, bottom + (2 * ox + 1) * Block);
      const Vec ab = a > b ? a : b, cd = c > d ? c : d;
      const Vec best = ab > cd ? ab : cd;
      store(out + ox * Block, best);
    }
  }
}

// yolov3-tiny's 2x2 stride-1 pool (13x13x512): the window covers (y..y+1, x..x+1), cells past the
// bottom and right edges ignored.
template <int Block>
CLOUDDETECT_AVX2 void max_pool_2x2_stride_1_rows(const float* src, int h, int w, int block, int first_row, int rows,
                                                 float* dst) {
  using Vec = Lanes<Block>;
  const float* in_plane = src + static_cast<std::size_t>(block) * h * w * Block;
  float* out_plane = dst + static_cast<std::size_t>(block) * h * w * Block;
  for (int y = first_row; y < first_row + rows; ++y) {
    const float* top = in_plane + static_cast<std::size_t>(y) * w * Block;
    const float* bottom = y + 1 < h ? top + static_cast<std::size_t>(w) * Block : top;
    float* out = out_plane + static_cast<std::size_t>(y) * w * Block;
    Vec left, right;
    {
      Vec a, c;
      load(a, top);
      load(c, bottom);
      left = a > c ? a : c;  // the column max of x
    }
    for (int x = 0; x < w; ++x) {
      if (x + 1 < w) {
        Vec b, d;
        load(b, top + (x + 1) * Block);
        load(d, bottom + (x + 1) * Block);
        right = b > d ? b : d;
      } else {
        right = left;
      }
      store(out + x * Block, left > right ? left : right);
      left = right;
    }
  }
}

}  // namespace

bool max_pool_2x2_fits(const darknet::Layer& layer, const memory::desc& src_md) {
  const auto& p = layer.maxpool;
  const int block = channel_block(src_md);
  const bool halving = p.stride == 2 && layer.input.h % 2 == 0 && layer.input.w % 2 == 0 &&
                       layer.output.h == layer.input.h / 2 && layer.output.w == layer.input.w / 2;
  // Darknet pads size - 1 = 1 by default, the window starting at -1/2 = 0: right and bottom only.
  const bool same =
      p.stride == 1 && p.padding == 1 && layer.output.h == layer.input.h && layer.output.w == layer.input.w;
  return p.size == 2 && (halving || same) && src_md.data_type() == memory::data_type::f32 &&
         (block == 8 || block == 16) && layer.input.c % block == 0 && has_avx2_fma();
}

memory make_max_pool_2x2(Plan& plan, const darknet::Layer& layer, const memory& src) {
  const memory::desc src_md = src.get_desc();
  const int block = channel_block(src_md);
  const memory dst =
      plan.new_memory(memory::desc({1, layer.output.c, layer.output.h, layer.output.w}, memory::data_type::f32,
                                   block == 16 ? memory::format_tag::nChw16c : memory::format_tag::nChw8c));
  const int h = layer.input.h, w = layer.input.w, blocks = layer.input.c / block, out_h = layer.output.h;
  const bool stride_1 = layer.maxpool.stride == 1;
  auto rows = stride_1 ? (block == 16 ? max_pool_2x2_stride_1_rows<16> : max_pool_2x2_stride_1_rows<8>)
                       : (block == 16 ? max_pool_2x2_rows<16> : max_pool_2x2_rows<8>);
  plan.add_own(stride_1 ? "clouddetect:max_pool_2x2_stride_1" : "clouddetect:max_pool_2x2",
               [rows, src, dst, h, w, blocks, out_h] {
                 const auto* in = static_cast<const float*>(src.get_data_handle());
                 auto* out = static_cast<float*>(dst.get_data_handle());
                 // Bands of output rows, so several threads share even a single channel block.
                 constexpr int kBand = 8;
                 const int bands = (out_h + kBand - 1) / kBand;
#pragma omp parallel for collapse(2) schedule(static)
                 for (int b = 0; b < blocks; ++b) {
                   for (int band = 0; band < bands; ++band) {
                     rows(in, h, w, b, band * kBand, std::min(kBand, out_h - band * kBand), out);
                   }
                 }
               },
               {src, dst});
  return dst;
}

}  // namespace clouddetect::onednn
