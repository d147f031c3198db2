#include "backends/onednn/bench_products.h"

#include <omp.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "backends/onednn/kernels/lanes.h"
#include "backends/onednn/kernels/panel_product.h"
#include "backends/onednn/kernels/winograd.h"
#include "backends/onednn/plan.h"
#include "backends/onednn/test_models.h"

namespace clouddetect::onednn {

namespace {

using dnnl::memory;

double thread_cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) * 1e-6;
}

// The minimum thread CPU ms of `iterations` calls (the least disturbed by other load).
template <typename Run>
double min_ms(int iterations, Run run) {
  double best = 1e9;
  for (int i = 0; i < iterations; ++i) {
    const double start = thread_cpu_ms();
    run();
    best = std::min(best, thread_cpu_ms() - start);
  }
  return best;
}

// One layer's products in one block, as make_own_winograd lays them out: V [tile][position][channel],
// M [tile][position][filter].
struct Products {
  int positions, rows, channels, filters;
};

double matmul_ms(const Products& p, int iterations) {
  const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::dim positions = p.positions, rows = p.rows, channels = p.channels, filters = p.filters;
  const memory::desc v({positions, rows, channels}, memory::data_type::f32, {channels, positions * channels, 1});
  const memory::desc m({positions, rows, filters}, memory::data_type::f32, {filters, positions * filters, 1});
  const memory::desc any({positions, channels, filters}, memory::data_type::f32, memory::format_tag::any);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(v, any, m), engine);
  const dnnl::matmul matmul(pd);
  memory v_memory(v, engine), weights(pd.weights_desc(), engine), m_memory(m, engine);
  std::fill_n(static_cast<float*>(v_memory.get_data_handle()), v.get_size() / sizeof(float), 0.5f);
  std::fill_n(static_cast<float*>(weights.get_data_handle()), pd.weights_desc().get_size() / sizeof(float), 0.25f);
  return min_ms(iterations, [&] {
    matmul.execute(stream, {{DNNL_ARG_SRC, v_memory}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, m_memory}});
    stream.wait();
  });
}

double panels_ms(const Products& p, bool avx512, int iterations) {
  const auto tile_v = static_cast<std::size_t>(p.positions) * p.channels;
  const auto tile_m = static_cast<std::size_t>(p.positions) * p.filters;
  std::vector<float> v(p.rows * tile_v, 0.5f), m(p.rows * tile_m);
  std::vector<float> weights(static_cast<std::size_t>(p.positions) * p.channels * p.filters, 0.25f);
  const PanelProduct product{p.positions,
                             p.rows,
                             p.channels,
                             p.filters,
                             static_cast<std::size_t>(p.channels),
                             tile_v,
                             static_cast<std::size_t>(p.filters),
                             tile_m};
  return min_ms(iterations, [&] { multiply_panels(product, v.data(), weights.data(), m.data(), avx512); });
}

}  // namespace

int bench_products(const std::string& directory, int iterations) {
  auto model = testing::load_test_model(directory);
  omp_set_num_threads(1);
  const Plan plan(dnnl::engine(dnnl::engine::kind::cpu, 0));
  const bool avx512 = channel_block(plan.activation_desc({1, 16, 1, 1})) == 16 && has_avx512();
  std::printf("%-5s %-30s %5s %8s %10s %10s  %s\n", "layer", "products", "tile", "U MB", "matmul ms", "panels ms",
              "backend");
  for (const darknet::Layer& layer : model->layers) {
    if (layer.type != darknet::LayerType::kConvolutional || !own_winograd_fits(plan, layer) ||
        layer.convolutional.stride != 1) {
      continue;
    }
    // F(4x4) from 26x26 maps, F(3x3) below (where the backend multiplies with the matmul and AVX-512, F(2x2)).
    const int tile = layer.output.h * layer.output.w >= 26 * 26 ? 4 : 3;
    const int side = tile + 2;
    const Products p{side * side, ((layer.output.h + tile - 1) / tile) * ((layer.output.w + tile - 1) / tile),
                     layer.input.c, layer.output.c};
    if (p.filters % panel_columns(avx512) != 0) continue;
    const double weight_mb = static_cast<double>(p.positions) * p.channels * p.filters * sizeof(float) / (1 << 20);
    char shape[48];
    std::snprintf(shape, sizeof shape, "%d x %dx%dx%d", p.positions, p.rows, p.channels, p.filters);
    std::printf("%-5d %-30s %5d %8.1f %10.3f %10.3f  %s\n", layer.index, shape, tile, weight_mb,
                matmul_ms(p, iterations), panels_ms(p, avx512, iterations),
                own_winograd_panels(plan, layer, tile) ? "panels" : "matmul");
  }
  return 0;
}

}  // namespace clouddetect::onednn
