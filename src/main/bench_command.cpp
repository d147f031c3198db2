// `clouddetect bench`: forward-pass time of each backend on the same input, interleaved so that
// frequency changes and noisy neighbours hit every backend alike.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>

#include <opencv2/core/utility.hpp>

#include "core/error.h"
#include "darknet/cfg_parser.h"
#include "darknet/model_loader.h"
#include "darknet/synthetic_weights.h"
#include "darknet/weights_reader.h"
#include "image/decode.h"
#include "image/letterbox.h"
#include "main/commands.h"
#include "main/detection_service.h"

namespace clouddetect {
namespace {

struct Contender {
  std::string backend;
  std::string precision;
  std::unique_ptr<Backend> instance;
  std::vector<Tensor> heads;
  std::vector<double> ms;
};

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  std::size_t index = static_cast<std::size_t>(p / 100.0 * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

cv::Mat bench_image(const std::string& path, const darknet::Model& model) {
  std::string chosen = path;
  if (chosen.empty()) {
    const char* shared = std::getenv("CLOUDDETECT_SHARED");
    chosen = std::string(shared ? shared : "../shared") + "/data/coco128/images/000000000009.jpg";
    if (!std::ifstream(chosen)) {
      cv::Mat noise(model.height, model.width, CV_8UC3);
      cv::randu(noise, 0, 255);
      return noise;
    }
  }
  std::ifstream in(chosen, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot open " + chosen);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return image::decode(bytes, 1LL << 30);
}

}  // namespace

int run_bench(const BenchOptions& options) {
  cv::setNumThreads(options.model.threads);
  auto model = darknet::load_model(options.model.model_dir);
  std::vector<Contender> contenders;
  for (const std::string& backend : options.backends) {
    for (const std::string& precision : options.precisions) {
      if (backend == "opencv" && precision != "fp32") continue;  // OpenCV runs fp32 only
      BackendOptions backend_options;
      backend_options.threads = options.model.threads;
      backend_options.precision = precision;
      contenders.push_back({backend, precision, create_backend(backend, model, backend_options), {}, {}});
    }
  }
  if (contenders.empty()) throw Error(ErrorCode::kInvalidArgument, "nothing to benchmark");

  image::Preprocessor preprocessor(model->width, model->height, default_resize_mode(*model));
  Tensor input;
  preprocessor.run(bench_image(options.image, *model), input);
  for (int i = 0; i < options.warmup; ++i) {
    for (auto& c : contenders) c.instance->forward(input, c.heads);
  }
  for (int i = 0; i < options.iterations; ++i) {
    for (auto& c : contenders) {
      auto start = std::chrono::steady_clock::now();
      c.instance->forward(input, c.heads);
      c.ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
  }

  double opencv_median = 0;
  for (const auto& c : contenders) {
    if (c.backend == "opencv") opencv_median = percentile(c.ms, 50);
  }
  const std::string input_size = std::to_string(model->width) + "x" + std::to_string(model->height);
  for (const auto& c : contenders) {
    double median = percentile(c.ms, 50);
    // Printed by hand: Boost.JSON would write 116.73 as 1.1673E2.
    char speedup[32] = "null";
    if (opencv_median > 0) std::snprintf(speedup, sizeof(speedup), "%.2f", opencv_median / median);
    std::printf(
        "{\"backend\":\"%s\",\"precision\":\"%s\",\"model\":\"%s\",\"input\":\"%s\",\"threads\":%d,"
        "\"iterations\":%d,\"ms_median\":%.2f,\"ms_p90\":%.2f,\"speedup_vs_opencv\":%s}\n",
        c.backend.c_str(), c.precision.c_str(), model->name.c_str(), input_size.c_str(), options.model.threads,
        options.iterations, median, percentile(c.ms, 90),
        speedup);
  }
  std::printf("\n%-8s %-9s %-22s %-8s %10s %10s %9s\n", "backend", "precision", "model", "input", "median ms",
              "p90 ms", "speedup");
  for (const auto& c : contenders) {
    double median = percentile(c.ms, 50);
    std::printf("%-8s %-9s %-22s %-8s %10.2f %10.2f %8.2fx\n", c.backend.c_str(), c.precision.c_str(),
                model->name.c_str(), input_size.c_str(), median, percentile(c.ms, 90),
                opencv_median > 0 ? opencv_median / median : 0.0);
  }
  return 0;
}

int run_make_weights(const std::string& cfg_path, const std::string& out_path, unsigned seed) {
  darknet::Model model = darknet::parse_cfg_file(cfg_path);
  darknet::fill_synthetic_weights(model, seed);
  std::vector<char> bytes = darknet::serialize_weights(model);
  std::ofstream out(out_path, std::ios::binary);
  if (!out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    throw Error(ErrorCode::kInvalidArgument, "cannot write " + out_path);
  }
  std::cerr << "wrote " << bytes.size() << " bytes of random weights for " << model.name << " to " << out_path
            << "\n";
  return 0;
}

}  // namespace clouddetect
