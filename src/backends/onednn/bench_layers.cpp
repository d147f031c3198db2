// Interleaved single-process timing, native vs opencv, for the native backend's own tuning (the
// product benchmark is `clouddetect bench`). Usage:
//   clouddetect_onednn_bench MODEL_DIR [iterations=30] [threads=1]
//   clouddetect_onednn_bench --layers MODEL_DIR [iterations=20] [nChw16c|nChw8c|nhwc]   (each conv alone, per layout)
//   clouddetect_onednn_bench --products MODEL_DIR [iterations=10]   (Winograd's products: oneDNN or ours)
// --layers also times each convolution with XNNPACK (nhwc, its activation as a second operator)
// when built with it (Debian libxnnpack-dev): the issue asks which library is fastest per layer.
// A model folder without .weights (yolov3-tiny) runs with synthetic weights. Prints the median
// and p90 wall ms per forward of each backend, and the median CPU ms of the calling thread
// (with threads=1 all work runs there, so it is robust to other load on the machine). Set ONEDNN_VERBOSE=1 for
// per-primitive times.
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <opencv2/core/utility.hpp>
#include <random>
#include <stdexcept>

#include "backends/backend.h"
#include "backends/onednn/activation.h"
#include "backends/onednn/batch_norm_folding.h"
#include "backends/onednn/bench_products.h"
#include "backends/onednn/layers/convolutional.h"
#include "backends/onednn/onednn_backend.h"
#include "backends/onednn/test_models.h"

#ifdef CLOUDDETECT_HAVE_XNNPACK
#include <xnnpack.h>
#endif

using namespace clouddetect;

namespace {

double thread_cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) * 1e-6;
}

#ifdef CLOUDDETECT_HAVE_XNNPACK
// The convolution with XNNPACK (single thread, nhwc): minimum thread CPU ms, as below.
double xnnpack_ms(const darknet::Layer& layer, int iterations) {
  const auto& p = layer.convolutional;
  const int group_in = layer.input.c / p.groups, group_out = p.filters / p.groups;
  // Our folded weights are [filters][c/groups][ky][kx]; XNNPACK wants [filters][ky][kx][c/groups].
  const std::vector<float> oihw = onednn::fold_batch_norm_weights(layer);
  std::vector<float> ohwi(oihw.size());
  for (int o = 0; o < p.filters; ++o)
    for (int i = 0; i < group_in; ++i)
      for (int y = 0; y < p.size; ++y)
        for (int x = 0; x < p.size; ++x)
          ohwi[((static_cast<std::size_t>(o) * p.size + y) * p.size + x) * group_in + i] =
              oihw[((static_cast<std::size_t>(o) * group_in + i) * p.size + y) * p.size + x];
  const std::vector<float> bias = onednn::fold_batch_norm_bias(layer);
  std::vector<float> input(static_cast<std::size_t>(layer.input.size()), 0.5f);
  std::vector<float> output(static_cast<std::size_t>(layer.output.size()));
  const auto pad_end =
      static_cast<uint32_t>(std::max(0, (layer.output.h - 1) * p.stride + p.size - layer.input.h - p.padding));
  const float output_min = p.activation == darknet::Activation::kRelu ? 0.0f : -INFINITY;
  xnn_operator_t convolution = nullptr, activation = nullptr;
  if (xnn_create_convolution2d_nhwc_f32(p.padding, pad_end, pad_end, p.padding, p.size, p.size, p.stride, p.stride, 1,
                                        1, p.groups, group_in, group_out, layer.input.c, p.filters, ohwi.data(),
                                        bias.data(), output_min, INFINITY, 0, &convolution) != xnn_status_success ||
      xnn_setup_convolution2d_nhwc_f32(convolution, 1, layer.input.h, layer.input.w, input.data(), output.data(),
                                       nullptr) != xnn_status_success) {
    throw std::runtime_error("XNNPACK refused the convolution of layer " + std::to_string(layer.index));
  }
  const std::size_t pixels = static_cast<std::size_t>(layer.output.h * layer.output.w);
  if (p.activation == darknet::Activation::kLeaky) {
    xnn_create_leaky_relu_nc_f32(p.filters, p.filters, p.filters, onednn::kLeakySlope, 0, &activation);
    xnn_setup_leaky_relu_nc_f32(activation, pixels, output.data(), output.data(), nullptr);
  } else if (p.activation == darknet::Activation::kLogistic) {
    xnn_create_sigmoid_nc_f32(p.filters, p.filters, p.filters, 0, &activation);
    xnn_setup_sigmoid_nc_f32(activation, pixels, output.data(), output.data(), nullptr);
  }
  double best = 1e9;
  for (int i = 0; i < iterations; ++i) {
    const double start = thread_cpu_ms();
    xnn_run_operator(convolution, nullptr);
    if (activation) xnn_run_operator(activation, nullptr);
    best = std::min(best, thread_cpu_ms() - start);
  }
  xnn_delete_operator(convolution);
  if (activation) xnn_delete_operator(activation);
  return best;
}
#endif

// Each convolution of the model alone, in each activation layout: the minimum thread CPU ms over
// `iterations` runs (the minimum is the least disturbed by other load on the machine). The
// nChw16c/nChw8c columns are what the backend runs (Winograd where it chooses it).
int bench_layers(const std::string& directory, int iterations, const std::string& only_layout) {
  using tag = dnnl::memory::format_tag;
  auto model = onednn::testing::load_test_model(directory);
  omp_set_num_threads(1);
  const std::pair<const char*, tag> layouts[] = {
      {"nChw16c", tag::nChw16c}, {"nChw8c", tag::nChw8c}, {"nhwc", tag::nhwc}};
  double totals[3] = {0, 0, 0}, best_total = 0, xnnpack_total = 0;
#ifdef CLOUDDETECT_HAVE_XNNPACK
  if (xnn_initialize(nullptr) != xnn_status_success) throw std::runtime_error("xnn_initialize failed");
  const char* xnnpack_column = "xnnpack";
#else
  const char* xnnpack_column = "(no xnnpack)";
#endif
  std::printf("%-5s %-34s %9s %9s %9s %9s\n", "layer", "conv", "nChw16c", "nChw8c", "nhwc", xnnpack_column);
  for (const darknet::Layer& layer : model->layers) {
    if (layer.type != darknet::LayerType::kConvolutional) continue;
    onednn::PreparedConvolution prepared(layer);
    double ms[3];
    for (int v = 0; v < 3; ++v) {
      // nhwc below 8 channels: oneDNN has only a reference kernel.
      if ((layer.input.c < 8 && layouts[v].second == tag::nhwc) ||
          (!only_layout.empty() && only_layout != layouts[v].first)) {
        ms[v] = 0;
        continue;
      }
      onednn::Plan plan(dnnl::engine(dnnl::engine::kind::cpu, 0), layouts[v].second);
      const dnnl::memory::dims dims = {1, layer.input.c, layer.input.h, layer.input.w};
      dnnl::memory src = plan.new_memory(layer.input.c < 8 ? onednn::plain_desc(dims) : plan.activation_desc(dims));
      onednn::make_convolutional(plan, prepared, src);
      plan.finalize();
      std::fill_n(static_cast<float*>(src.get_data_handle()), src.get_desc().get_size() / sizeof(float), 0.5f);
      double best = 1e9;
      for (int i = 0; i < iterations; ++i) {
        double start = thread_cpu_ms();
        plan.execute();
        best = std::min(best, thread_cpu_ms() - start);
      }
      ms[v] = best;
      totals[v] += best;
    }
    best_total += layer.input.c < 8 ? std::min(ms[0], ms[1]) : *std::min_element(ms, ms + 3);
    const auto& p = layer.convolutional;
    char name[64];
    std::snprintf(name, sizeof name, "%dx%dx%d k%d s%d g%d -> %d", layer.input.c, layer.input.h, layer.input.w, p.size,
                  p.stride, p.groups, p.filters);
    double xnnpack = 0;
#ifdef CLOUDDETECT_HAVE_XNNPACK
    if (only_layout.empty()) xnnpack = xnnpack_ms(layer, iterations);
#endif
    xnnpack_total += xnnpack;
    std::printf("%-5d %-34s %9.3f %9.3f %9.3f %9.3f\n", layer.index, name, ms[0], ms[1], ms[2], xnnpack);
  }
  std::printf("%-40s %9.3f %9.3f %9.3f %9.3f   best oneDNN per layer %.3f\n", "total", totals[0], totals[1], totals[2],
              xnnpack_total, best_total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 && std::string(argv[1]) == "--layers") {
    try {
      return bench_layers(argv[2], argc > 3 ? std::atoi(argv[3]) : 20, argc > 4 ? argv[4] : "");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    }
  }
  if (argc > 2 && std::string(argv[1]) == "--products") {
    try {
      return onednn::bench_products(argv[2], argc > 3 ? std::atoi(argv[3]) : 10);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 1;
    }
  }
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [iterations] [threads]\n", argv[0]);
    return 2;
  }
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 30;
  BackendOptions options;
  options.threads = argc > 3 ? std::atoi(argv[3]) : 1;
  cv::setNumThreads(options.threads);
  try {
    auto model = onednn::testing::load_test_model(argv[1]);
    std::vector<std::pair<std::string, std::unique_ptr<Backend>>> backends;
    backends.emplace_back("opencv", create_backend("opencv", model, options));
    backends.emplace_back("native", make_onednn_backend(model, options));
    Tensor input;
    input.reshape({1, model->channels, model->height, model->width});
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(0, 1);
    for (float& x : input.data) x = dist(rng);
    std::vector<Tensor> heads;
    std::vector<std::vector<double>> ms(backends.size()), cpu_ms(backends.size());
    for (int i = -3; i < iterations; ++i) {
      for (std::size_t b = 0; b < backends.size(); ++b) {
        auto start = std::chrono::steady_clock::now();
        double cpu_start = thread_cpu_ms();
        backends[b].second->forward(input, heads);
        double cpu = thread_cpu_ms() - cpu_start;
        double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        if (i >= 0) ms[b].push_back(elapsed), cpu_ms[b].push_back(cpu);
      }
    }
    double opencv_median = 0, opencv_cpu = 0;
    for (std::size_t b = 0; b < backends.size(); ++b) {
      std::sort(ms[b].begin(), ms[b].end());
      std::sort(cpu_ms[b].begin(), cpu_ms[b].end());
      double median = ms[b][ms[b].size() / 2], p90 = ms[b][ms[b].size() * 9 / 10];
      double cpu = cpu_ms[b][cpu_ms[b].size() / 2], cpu_min = cpu_ms[b].front();
      if (b == 0) opencv_median = median, opencv_cpu = cpu;
      std::printf(
          "%-22s %-7s threads %d  wall median %8.2f ms  p90 %8.2f ms  speedup %.2fx | thread-cpu median %8.2f ms  "
          "speedup %.2fx  min %8.2f ms\n",
          model->name.c_str(), backends[b].first.c_str(), options.threads, median, p90, opencv_median / median, cpu,
          opencv_cpu / cpu, cpu_min);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
