// Interleaved single-process timing, native vs opencv, for the native backend's own tuning (the
// product benchmark is `clouddetect bench`). Usage:
//   clouddetect_onednn_bench MODEL_DIR [iterations=30] [threads=1]
// A model folder without .weights (yolov3-tiny) runs with synthetic weights. Prints the median
// and p90 wall ms per forward of each backend, and the median CPU ms of the calling thread
// (with threads=1 all work runs there, so it is robust to other load on the machine). Set ONEDNN_VERBOSE=1 for per-primitive times.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

#include <time.h>

#include <opencv2/core/utility.hpp>

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
    auto thread_cpu_ms = [] {
      timespec t{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
      return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) * 1e-6;
    };
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
      std::printf("%-22s %-7s threads %d  wall median %8.2f ms  p90 %8.2f ms  speedup %.2fx | thread-cpu median %8.2f ms  speedup %.2fx  min %8.2f ms\n",
                  model->name.c_str(), backends[b].first.c_str(), options.threads, median, p90, opencv_median / median,
                  cpu, opencv_cpu / cpu, cpu_min);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
