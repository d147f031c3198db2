// `clouddetect bench`: forward-pass time of each backend on the same input, interleaved so that
// frequency changes and noisy neighbours hit every backend alike.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <opencv2/core/utility.hpp>
#include <set>

#include "core/error.h"
#include "darknet/cfg_parser.h"
#include "darknet/model_loader.h"
#include "darknet/synthetic_weights.h"
#include "darknet/weights_reader.h"
#include "eval/dataset.h"
#include "eval/mean_ap.h"
#include "image/decode.h"
#include "image/letterbox.h"
#include "main/bench_accuracy.h"
#include "main/commands.h"
#include "main/detection_service.h"

namespace clouddetect {
namespace {

struct Contender {
  ScoredSystem system;  // backend, precision, options and, with --accuracy, the scores
  std::unique_ptr<Backend> instance;
  std::vector<Tensor> heads;
  std::vector<double> ms;        // interleaved with the others
  std::vector<double> ms_alone;  // before the others ran (see run_bench)
};

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

// Where int8's activation ranges come from: a file, or the first N images of the calibration set.
// Returns them with a line saying which images they were measured on.
std::shared_ptr<const ActivationRanges> int8_ranges(const BenchOptions& options,
                                                    const std::shared_ptr<const darknet::Model>& model,
                                                    const std::vector<std::string>& calibration_images,
                                                    std::string& described) {
  const std::string path = calibration_path(options.model);
  if (!options.model.calibration.empty() || std::ifstream(path)) {
    auto ranges = std::make_shared<const ActivationRanges>(load_activation_ranges(path, *model));
    described =
        path + " (" + (ranges->source.empty() ? std::to_string(ranges->images) + " images" : ranges->source) + ")";
    return ranges;
  }
  if (calibration_images.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "int8 needs activation ranges: --calibration FILE, or images to "
                "calibrate on (--calibration-dataset DIR)");
  }
  auto ranges = std::make_shared<ActivationRanges>(calibrate_on_images(model, options.model, calibration_images));
  described = "the first " + std::to_string(calibration_images.size()) + " images of " + options.calibration_dataset +
              "/images";
  ranges->source = described;
  return ranges;
}

// The scored images: the whole labelled set, minus any image int8 was calibrated on (scores on
// images the ranges were measured on would flatter int8).
std::vector<std::string> scored_images(const std::string& dataset, const std::vector<std::string>& calibration) {
  std::vector<std::string> images;
  try {
    images = eval::list_images(dataset + "/images");
  } catch (const Error& e) {
    throw Error(e.code(), std::string(e.what()) +
                              ": accuracy (always measured with int8) needs a labelled dataset, --dataset DIR with "
                              "images/ and labels/");
  }
  // By canonical path: the same folder may be spelled two ways.
  std::set<std::filesystem::path> excluded;
  for (const std::string& image : calibration) excluded.insert(std::filesystem::weakly_canonical(image));
  images.erase(std::remove_if(images.begin(), images.end(),
                              [&](const std::string& image) {
                                return excluded.count(std::filesystem::weakly_canonical(image)) > 0;
                              }),
               images.end());
  if (images.empty()) throw Error(ErrorCode::kInvalidArgument, "every image of " + dataset + " calibrated int8");
  return images;
}

std::string json_number(double value, bool measured = true) {
  char text[32] = "null";
  if (measured) std::snprintf(text, sizeof(text), "%.4f", value);
  return text;
}

std::string json_interval(const MapDifference& d) {
  char text[64] = "null";
  if (d.measured) std::snprintf(text, sizeof(text), "[%.4f,%.4f]", d.ci95.low, d.ci95.high);
  return text;
}

// The differences each contender's line reports: its drop against the same backend's fp32 (a lower
// precision) and its difference from OpenCV (a native fp32), each at conf 0.005 and at serving.
struct Differences {
  MapDifference drop, drop_serving, vs_opencv, vs_opencv_serving;
};

Differences differences_of(const Contender& c, const std::vector<Contender>& all, const AccuracyRun& run) {
  Differences d;
  for (const Contender& other : all) {
    const ScoredSystem& o = other.system;
    if (&other == &c) continue;
    const bool fp32 = c.system.options.precision == Precision::kFp32;
    if (o.backend == c.system.backend && o.options.precision == Precision::kFp32 && !fp32) {
      d.drop = map_difference(o, c.system, run, false);
      d.drop_serving = map_difference(o, c.system, run, true);
    }
    if (o.backend == "opencv" && c.system.backend != "opencv" && fp32) {
      d.vs_opencv = map_difference(c.system, o, run, false);
      d.vs_opencv_serving = map_difference(c.system, o, run, true);
    }
  }
  return d;
}

// Printed by hand: Boost.JSON would write 116.73 as 1.1673E2.
void print_json_line(const Contender& c, const Differences& d, const std::string& model_fields, double speedup,
                     const std::string& accuracy_fields) {
  const ScoredSystem& s = c.system;
  std::printf(
      "{\"backend\":\"%s\",\"precision\":\"%s\",%s,\"iterations\":%zu,\"ms_median\":%.2f,\"ms_p90\":%.2f,"
      "\"ms_median_alone\":%.2f,\"speedup_vs_opencv\":%s,%s,\"map50\":%s,\"map50_drop_vs_fp32\":%s,"
      "\"map50_drop_ci95\":%s,\"map50_serving\":%s,\"map50_serving_drop_vs_fp32\":%s,"
      "\"map50_serving_drop_ci95\":%s,\"map50_vs_opencv\":%s,\"map50_vs_opencv_ci95\":%s,"
      "\"map50_serving_vs_opencv\":%s,\"map50_serving_vs_opencv_ci95\":%s,\"head_error_vs_fp32\":%s}\n",
      s.backend.c_str(), to_string(s.options.precision), model_fields.c_str(), c.ms.size(), percentile(c.ms, 50),
      percentile(c.ms, 90), percentile(c.ms_alone, 50), speedup > 0 ? json_number(speedup).c_str() : "null",
      accuracy_fields.c_str(), json_number(s.map50, s.map50 >= 0).c_str(),
      json_number(d.drop.value, d.drop.measured).c_str(), json_interval(d.drop).c_str(),
      json_number(s.map50_serving, s.map50 >= 0).c_str(),
      json_number(d.drop_serving.value, d.drop_serving.measured).c_str(), json_interval(d.drop_serving).c_str(),
      json_number(d.vs_opencv.value, d.vs_opencv.measured).c_str(), json_interval(d.vs_opencv).c_str(),
      json_number(d.vs_opencv_serving.value, d.vs_opencv_serving.measured).c_str(),
      json_interval(d.vs_opencv_serving).c_str(), json_number(s.head_error, s.head_error >= 0).c_str());
}

std::string table_interval(const MapDifference& d) {
  char text[64] = "-";
  if (d.measured) std::snprintf(text, sizeof(text), "%+.4f [%+.4f, %+.4f]", d.value, d.ci95.low, d.ci95.high);
  return text;
}

// First each contender alone, created and timed one after the other, the OpenCV reference first
// (before any other instance exists), then all interleaved. OpenCV's own speed moves with the
// state of the process, not with our code (yolov3-tiny: 98-102 ms or 131-134 ms, alone or
// interleaved, depending on the run; 100 ms in Python), so the speed-up is taken between each
// one's faster median and never rests on a slow reference.
std::vector<Contender> timed_contenders(const BenchOptions& options, const std::shared_ptr<const darknet::Model>& model,
                                        const std::shared_ptr<const ActivationRanges>& ranges, const Tensor& input) {
  auto forward_ms = [&](Contender& c) {
    const auto start = std::chrono::steady_clock::now();
    c.instance->forward(input, c.heads);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  std::vector<Contender> contenders;
  std::vector<std::string> backends = options.backends;
  std::stable_partition(backends.begin(), backends.end(), [](const std::string& b) { return b == "opencv"; });
  for (const std::string& backend : backends) {
    for (const Precision precision : options.precisions) {
      if (backend == "opencv" && precision != Precision::kFp32) continue;  // OpenCV runs fp32 only
      Contender contender;
      contender.system.backend = backend;
      contender.system.options.threads = options.model.threads;
      contender.system.options.precision = precision;
      if (precision == Precision::kInt8) contender.system.options.activation_ranges = ranges;
      contender.instance = create_backend(backend, model, contender.system.options);
      if (const auto kernels = contender.instance->kernels(); !kernels.empty()) {
        std::cerr << backend << " " << to_string(precision) << " kernels: " << summarize_kernels(kernels) << "\n";
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
  return contenders;
}

// mAP@0.5 of every contender on the labelled set less the calibration images; returns the JSON
// fields that say what was scored.
std::string score_accuracy(const BenchOptions& options, const std::shared_ptr<const darknet::Model>& model,
                           const std::vector<std::string>& calibration_images, const std::string& calibration,
                           AccuracyRun& run, std::vector<Contender>& contenders) {
  run.images = scored_images(options.dataset, calibration_images);
  const std::size_t left_out = eval::list_images(options.dataset + "/images").size() - run.images.size();
  std::vector<ScoredSystem> systems;
  for (const Contender& c : contenders) systems.push_back(c.system);
  score_systems(model, run, systems);
  for (std::size_t i = 0; i < contenders.size(); ++i) contenders[i].system = std::move(systems[i]);
  std::cerr << "accuracy: mAP@0.5 on " << run.images.size() << " images of " << options.dataset
            << (left_out ? " (" + std::to_string(left_out) + " calibration images left out)" : std::string())
            << ", conf " << run.accuracy_conf << " and serving conf " << run.serving_conf << ", nms " << run.nms
            << "\n";
  return "\"dataset\":\"" + options.dataset + "\",\"scored_images\":" + std::to_string(run.images.size()) +
         ",\"calibration\":" + (calibration.empty() ? std::string("null") : "\"" + calibration + "\"") +
         ",\"accuracy_conf\":" + json_number(run.accuracy_conf) + ",\"serving_conf\":" + json_number(run.serving_conf);
}

// Each contender's faster mode (alone or interleaved): the speed-up never rests on a slow reference.
double best_median(const Contender& c) { return std::min(percentile(c.ms, 50), percentile(c.ms_alone, 50)); }

void print_speed_table(const std::vector<Contender>& contenders, double opencv_median) {
  std::printf("\n%-8s %-9s %10s %10s %10s %9s\n", "backend", "precision", "median ms", "p90 ms", "alone ms", "speedup");
  for (const Contender& c : contenders) {
    std::printf("%-8s %-9s %10.2f %10.2f %10.2f %8.2fx\n", c.system.backend.c_str(),
                to_string(c.system.options.precision), percentile(c.ms, 50), percentile(c.ms, 90),
                percentile(c.ms_alone, 50), opencv_median > 0 ? opencv_median / best_median(c) : 0.0);
  }
}

void print_accuracy_table(const std::string& model_name, const AccuracyRun& run, const std::string& dataset,
                          const std::string& calibration, const std::vector<Contender>& contenders,
                          const std::vector<Differences>& differences) {
  std::printf("\nmAP@0.5 of %s on %zu images of %s%s (95%% intervals: paired bootstrap over the images)\n",
              model_name.c_str(), run.images.size(), dataset.c_str(),
              calibration.empty() ? "" : (", int8 ranges from " + calibration).c_str());
  std::printf("%-8s %-9s %8s %-28s %-28s %8s %-28s %-28s %8s\n", "backend", "precision", "conf", "vs fp32", "vs opencv",
              "serving", "vs fp32", "vs opencv", "heads");
  for (std::size_t i = 0; i < contenders.size(); ++i) {
    const ScoredSystem& s = contenders[i].system;
    const Differences& d = differences[i];
    std::printf("%-8s %-9s %8.4f %-28s %-28s %8.4f %-28s %-28s %8s\n", s.backend.c_str(),
                to_string(s.options.precision), s.map50, table_interval(d.drop).c_str(),
                table_interval(d.vs_opencv).c_str(), s.map50_serving, table_interval(d.drop_serving).c_str(),
                table_interval(d.vs_opencv_serving).c_str(), json_number(s.head_error, s.head_error >= 0).c_str());
  }
}

}  // namespace

int run_bench(const BenchOptions& options_in) {
  BenchOptions options = options_in;
  if (options.dataset.empty()) options.dataset = shared_dir() + "/data/coco128";
  if (options.calibration_dataset.empty()) options.calibration_dataset = shared_dir() + "/data/coco128";
  cv::setNumThreads(options.model.threads);
  report_opencv_isa();
  auto model = darknet::load_model(options.model.model_dir);
  AccuracyRun run;
  run.resize = resize_mode(options.model, *model);
  run.accuracy_conf = options.accuracy_conf;
  run.serving_conf = options.model.conf;
  run.nms = options.model.nms;
  const bool int8 = std::count(options.precisions.begin(), options.precisions.end(), Precision::kInt8) > 0;
  // Lower precision is only reported with the accuracy it costs.
  const bool accuracy = options.accuracy || int8;

  std::shared_ptr<const ActivationRanges> ranges;
  std::vector<std::string> calibration_images;
  std::string calibration;  // where int8's ranges come from; empty without int8
  if (int8) {
    if (options.model.calibration.empty() && !std::ifstream(calibration_path(options.model))) {
      calibration_images = eval::list_images(options.calibration_dataset + "/images",
                                             static_cast<std::size_t>(options.calibration_images));
    }
    ranges = int8_ranges(options, model, calibration_images, calibration);
    std::cerr << "int8: activation ranges from " << calibration << "\n";
  }

  image::Preprocessor preprocessor(model->width, model->height, run.resize);
  Tensor input;
  preprocessor.run(bench_image(options.image, *model), input);
  std::vector<Contender> contenders = timed_contenders(options, model, ranges, input);
  const std::string accuracy_fields =
      accuracy ? score_accuracy(options, model, calibration_images, calibration, run, contenders)
               : "\"dataset\":null,\"scored_images\":0,\"calibration\":null";

  double opencv_median = 0;
  for (const auto& c : contenders) {
    if (c.system.backend == "opencv") opencv_median = best_median(c);
  }
  const std::string model_fields = "\"model\":\"" + model->name + "\",\"input\":\"" + std::to_string(model->width) +
                                   "x" + std::to_string(model->height) +
                                   "\",\"threads\":" + std::to_string(options.model.threads);
  std::vector<Differences> differences;
  for (const Contender& c : contenders) {
    differences.push_back(accuracy ? differences_of(c, contenders, run) : Differences{});
    print_json_line(c, differences.back(), model_fields, opencv_median > 0 ? opencv_median / best_median(c) : 0,
                    accuracy_fields);
  }
  print_speed_table(contenders, opencv_median);
  if (accuracy) print_accuracy_table(model->name, run, options.dataset, calibration, contenders, differences);
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
