// Interleaved single-process timing, native vs opencv, for the native backend's own tuning (the
// product benchmark is `clouddetect bench`). Usage:
//   clouddetect_onednn_bench MODEL_DIR [iterations=30] [threads=1]
// A model folder without .weights (yolov3-tiny) runs with synthetic weights. Prints the median
// and p90 ms per forward of each backend. Set ONEDNN_VERBOSE=1 for per-primitive times.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "backends/backend.h"
#include "backends/onednn/onednn_backend.h"
#include "backends/onednn/test_models.h"

using namespace clouddetect;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL_DIR [iterations] [threads]\n", argv[0]);
    return 2;
  }
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 30;
  BackendOptions options;
  options.threads = argc > 3 ? std::atoi(argv[3]) : 1;
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
    std::vector<std::vector<double>> ms(backends.size());
    for (int i = -3; i < iterations; ++i) {
      for (std::size_t b = 0; b < backends.size(); ++b) {
        auto start = std::chrono::steady_clock::now();
        backends[b].second->forward(input, heads);
        double elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
        if (i >= 0) ms[b].push_back(elapsed);
      }
    }
    double opencv_median = 0;
    for (std::size_t b = 0; b < backends.size(); ++b) {
      std::sort(ms[b].begin(), ms[b].end());
      double median = ms[b][ms[b].size() / 2], p90 = ms[b][ms[b].size() * 9 / 10];
      if (b == 0) opencv_median = median;
      std::printf("%-28s %-7s threads %d  median %8.2f ms  p90 %8.2f ms  speedup %.2fx\n", model->name.c_str(),
                  backends[b].first.c_str(), options.threads, median, p90, opencv_median / median);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
