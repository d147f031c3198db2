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
#include "eval/dataset.h"
#include "eval/mean_ap.h"
#include "image/decode.h"
#include "image/letterbox.h"
#include "main/commands.h"
#include "main/detection_service.h"

namespace clouddetect {
namespace {

struct Contender {
  std::string backend;
  std::string precision;
  BackendOptions options;
  std::unique_ptr<Backend> instance;
  std::vector<Tensor> heads;
  std::vector<double> ms;                 // interleaved with the others
  std::vector<double> ms_alone;           // before the others ran (see run_bench)
  double map50 = -1;                      // < 0: not measured
  double head_error = -1;                 // mean relative L2 error of the raw heads vs the same backend's fp32
  std::vector<eval::ImageResult> scored;  // per image, for the confidence interval of a drop
};

struct LabelledImage {
  cv::Mat bgr;
  std::vector<eval::GroundTruth> truth;
};

// The contender's detections on `images`: the whole pipeline (preprocess, backend, decode, NMS).
std::vector<eval::ImageResult> score_images(const std::shared_ptr<const darknet::Model>& model,
                                            const Contender& contender, const DetectorOptions& detector_options,
                                            const std::vector<LabelledImage>& images) {
  Detector detector(model, create_backend(contender.backend, model, contender.options), detector_options);
  std::vector<eval::ImageResult> results(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) {
    results[i].truth = images[i].truth;
    results[i].detections = detector.detect(images[i].bgr);
  }
  return results;
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  std::size_t index = static_cast<std::size_t>(p / 100.0 * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

cv::Mat bench_image(const std::string& path, const darknet::Model& model) {
  std::string chosen = path;
  if (chosen.empty()) {
    chosen = shared_dir() + "/data/coco128/images/000000000009.jpg";
    if (!std::ifstream(chosen)) {
      cv::Mat noise(model.height, model.width, CV_8UC3);
      cv::randu(noise, 0, 255);
      return noise;
    }
  }
  return read_image_file(chosen);
}

// Which vector ISA OpenCV's DNN runs is part of what a speed-up means (the native kernels' names say
// theirs). OpenCV spells the feature AVX512-SKX: the underscore form some guides give is rejected
// with only a warning, and OpenCV then keeps AVX-512.
void report_opencv_isa() {
  const char* disabled = std::getenv("OPENCV_CPU_DISABLE");
  std::cerr << "opencv: AVX-512 " << (cv::checkHardwareSupport(CV_CPU_AVX512_SKX) ? "on" : "off")
            << (disabled ? std::string(" (OPENCV_CPU_DISABLE=") + disabled + ")" : std::string()) << "\n";
  if (disabled && std::string(disabled).find("AVX512_SKX") != std::string::npos) {
    std::cerr << "note: OpenCV names the feature AVX512-SKX (hyphen); AVX512_SKX disables nothing\n";
  }
}

}  // namespace

int run_bench(const BenchOptions& options) {
  cv::setNumThreads(options.model.threads);
  report_opencv_isa();
  auto model = darknet::load_model(options.model.model_dir);
  const image::ResizeMode resize =
      options.model.resize == "auto" ? default_resize_mode(*model) : image::parse_resize_mode(options.model.resize);
  const std::string dataset = options.dataset.empty() ? shared_dir() + "/data/coco128" : options.dataset;
  bool int8 = false;
  for (const std::string& precision : options.precisions) int8 = int8 || precision == "int8";
  // Lower precision is only reported with the accuracy it costs.
  const bool accuracy = options.accuracy || int8;

  auto dataset_images = [&](std::size_t limit) {
    try {
      return eval::list_images(dataset + "/images", limit);
    } catch (const Error& e) {
      throw Error(e.code(), std::string(e.what()) +
                                ": accuracy (always measured with int8) and int8 calibration need a labelled "
                                "dataset, --dataset DIR with images/ and labels/");
    }
  };
  std::shared_ptr<const ActivationRanges> ranges;
  if (int8) {
    const std::string path = calibration_path(options.model);
    if (!options.model.calibration.empty() || std::ifstream(path)) {
      ranges = std::make_shared<const ActivationRanges>(load_activation_ranges(path, *model));
      std::cerr << "int8: activation ranges from " << path << " (" << ranges->images << " images)\n";
    } else {
      const auto images = dataset_images(static_cast<std::size_t>(options.calibration_images));
      ranges = std::make_shared<const ActivationRanges>(calibrate_on_images(model, options.model, images));
      std::cerr << "int8: calibrated on the first " << images.size() << " images of " << dataset << "/images\n";
    }
  }

  image::Preprocessor preprocessor(model->width, model->height, resize);
  Tensor input;
  preprocessor.run(bench_image(options.image, *model), input);
  auto forward_ms = [&](Contender& c) {
    const auto start = std::chrono::steady_clock::now();
    c.instance->forward(input, c.heads);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };

  // First each contender alone, created and timed one after the other, the OpenCV reference first
  // (before any other instance exists), then all interleaved. OpenCV's own speed moves with the
  // state of the process, not with our code (yolov3-tiny: 98-102 ms or 131-134 ms, alone or
  // interleaved, depending on the run; 100 ms in Python), so the speed-up is taken between each
  // one's faster median and never rests on a slow reference.
  std::vector<Contender> contenders;
  std::vector<std::string> backends = options.backends;
  std::stable_partition(backends.begin(), backends.end(), [](const std::string& b) { return b == "opencv"; });
  for (const std::string& backend : backends) {
    for (const std::string& precision : options.precisions) {
      if (backend == "opencv" && precision != "fp32") continue;  // OpenCV runs fp32 only
      Contender contender;
      contender.backend = backend;
      contender.precision = precision;
      contender.options.threads = options.model.threads;
      contender.options.precision = precision;
      if (precision == "int8") contender.options.activation_ranges = ranges;
      contender.instance = create_backend(backend, model, contender.options);
      if (const auto kernels = contender.instance->kernels(); !kernels.empty()) {
        std::cerr << backend << " " << precision << " kernels: " << summarize_kernels(kernels) << "\n";
      }
      for (int i = 0; i < options.warmup; ++i) forward_ms(contender);
      for (int i = 0; i < options.iterations; ++i) contender.ms_alone.push_back(forward_ms(contender));
      contenders.push_back(std::move(contender));
    }
  }
  if (contenders.empty()) throw Error(ErrorCode::kInvalidArgument, "nothing to benchmark");

  // Then all of them interleaved, so that a change in the machine's load hits every one alike.
  for (int i = 0; i < options.warmup; ++i) {
    for (auto& c : contenders) forward_ms(c);
  }
  for (int i = 0; i < options.iterations; ++i) {
    for (auto& c : contenders) c.ms.push_back(forward_ms(c));
  }
  // The same backend's fp32, which a lower precision's accuracy is measured against.
  auto fp32_of = [&](const Contender& c) -> const Contender* {
    for (const auto& other : contenders) {
      if (other.backend == c.backend && other.precision == "fp32") return &other;
    }
    return nullptr;
  };

  if (accuracy) {
    std::vector<LabelledImage> images;
    for (const std::string& path : dataset_images(0)) {
      LabelledImage image{read_image_file(path), {}};
      image.truth = eval::load_yolo_labels(path, image.bgr.cols, image.bgr.rows);
      images.push_back(std::move(image));
    }
    DetectorOptions detector_options;
    detector_options.score_threshold = options.accuracy_conf;
    detector_options.nms_threshold = options.model.nms;
    detector_options.resize = resize;
    for (auto& c : contenders) {
      c.scored = score_images(model, c, detector_options, images);
      c.map50 = eval::mean_average_precision(c.scored, 0.5f);
    }
    // The raw heads against the same backend's fp32 on every image: a finer signal than mAP, which
    // on this many images moves by +-0.01 with any small change.
    for (auto& c : contenders) {
      const Contender* reference = fp32_of(c);
      if (!reference || reference == &c) continue;
      double sum = 0;
      std::vector<Tensor> expected;
      for (const LabelledImage& image : images) {
        preprocessor.run(image.bgr, input);
        reference->instance->forward(input, expected);
        c.instance->forward(input, c.heads);
        double diff = 0, norm = 0;
        for (std::size_t h = 0; h < expected.size(); ++h) {
          for (std::size_t k = 0; k < expected[h].data.size(); ++k) {
            const double d = static_cast<double>(c.heads[h].data[k]) - expected[h].data[k];
            diff += d * d;
            norm += static_cast<double>(expected[h].data[k]) * expected[h].data[k];
          }
        }
        sum += std::sqrt(diff / norm);
      }
      c.head_error = sum / static_cast<double>(images.size());
    }
    std::cerr << "accuracy: mAP@0.5 on " << images.size() << " images of " << dataset << ", conf "
              << options.accuracy_conf << ", nms " << options.model.nms << "\n";
  }

  // Each contender's faster mode (alone or interleaved): the speed-up never rests on a slow reference.
  auto best_median = [](const Contender& c) { return std::min(percentile(c.ms, 50), percentile(c.ms_alone, 50)); };
  double opencv_median = 0;
  for (const auto& c : contenders) {
    if (c.backend == "opencv") opencv_median = best_median(c);
  }
  const std::string input_size = std::to_string(model->width) + "x" + std::to_string(model->height);
  auto fp32_map = [&](const Contender& c) { return fp32_of(c) ? fp32_of(c)->map50 : -1.0; };
  // The 95% interval of each lower precision's drop (paired bootstrap over the images).
  std::vector<eval::Interval> drop_interval(contenders.size());
  for (std::size_t i = 0; i < contenders.size(); ++i) {
    const Contender& c = contenders[i];
    if (c.precision != "fp32" && c.map50 >= 0 && fp32_map(c) >= 0) {
      drop_interval[i] = eval::bootstrap_map_difference(fp32_of(c)->scored, c.scored);
    }
  }
  for (std::size_t i = 0; i < contenders.size(); ++i) {
    const Contender& c = contenders[i];
    double median = percentile(c.ms, 50);
    // Printed by hand: Boost.JSON would write 116.73 as 1.1673E2.
    char speedup[32] = "null", map50[32] = "null", drop[32] = "null", interval[64] = "null", heads[32] = "null";
    if (c.head_error >= 0) std::snprintf(heads, sizeof(heads), "%.4f", c.head_error);
    if (opencv_median > 0) std::snprintf(speedup, sizeof(speedup), "%.2f", opencv_median / best_median(c));
    if (c.map50 >= 0) std::snprintf(map50, sizeof(map50), "%.4f", c.map50);
    if (c.map50 >= 0 && fp32_map(c) >= 0) std::snprintf(drop, sizeof(drop), "%.4f", fp32_map(c) - c.map50);
    if (c.precision != "fp32" && c.map50 >= 0 && fp32_map(c) >= 0) {
      std::snprintf(interval, sizeof(interval), "[%.4f,%.4f]", drop_interval[i].low, drop_interval[i].high);
    }
    std::printf(
        "{\"backend\":\"%s\",\"precision\":\"%s\",\"model\":\"%s\",\"input\":\"%s\",\"threads\":%d,"
        "\"iterations\":%d,\"ms_median\":%.2f,\"ms_p90\":%.2f,\"ms_median_alone\":%.2f,\"speedup_vs_opencv\":%s,"
        "\"map50\":%s,\"map50_drop_vs_fp32\":%s,\"map50_drop_ci95\":%s,\"head_error_vs_fp32\":%s}\n",
        c.backend.c_str(), c.precision.c_str(), model->name.c_str(), input_size.c_str(), options.model.threads,
        options.iterations, median, percentile(c.ms, 90), percentile(c.ms_alone, 50), speedup, map50, drop, interval,
        heads);
  }
  std::printf("\n%-8s %-9s %-22s %-8s %10s %10s %10s %9s %8s %8s  %s\n", "backend", "precision", "model", "input",
              "median ms", "p90 ms", "alone ms", "speedup", "mAP@0.5", "drop", "drop 95% interval");
  for (std::size_t i = 0; i < contenders.size(); ++i) {
    const Contender& c = contenders[i];
    double median = percentile(c.ms, 50);
    std::printf("%-8s %-9s %-22s %-8s %10.2f %10.2f %10.2f %8.2fx", c.backend.c_str(), c.precision.c_str(),
                model->name.c_str(), input_size.c_str(), median, percentile(c.ms, 90), percentile(c.ms_alone, 50),
                opencv_median > 0 ? opencv_median / best_median(c) : 0.0);
    if (c.map50 >= 0)
      std::printf(" %8.4f", c.map50);
    else
      std::printf(" %8s", "-");
    if (c.map50 >= 0 && fp32_map(c) >= 0)
      std::printf(" %8.4f", fp32_map(c) - c.map50);
    else
      std::printf(" %8s", "-");
    if (c.precision != "fp32" && c.map50 >= 0 && fp32_map(c) >= 0)
      std::printf("  [%.4f, %.4f]", drop_interval[i].low, drop_interval[i].high);
    std::printf("\n");
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
  std::cerr << "wrote " << bytes.size() << " bytes of random weights for " << model.name << " to " << out_path << "\n";
  return 0;
}

}  // namespace clouddetect
