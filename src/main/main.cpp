// clouddetect: one binary, subcommands serve | detect | bench | calibrate | make-weights. Wiring only.
#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <map>
#include <optional>
#include <string>

#include "backends/backend.h"
#include "core/container_limits.h"
#include "core/error.h"
#include "main/commands.h"

namespace {

using clouddetect::ModelOptions;

// "5s", "500ms", "2.5" (seconds), "1m"; at least 1 ms. Throws CLI::ValidationError otherwise.
std::chrono::milliseconds parse_duration(const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    throw CLI::ValidationError("--max-wait", "not a duration: " + text);
  }
  const std::string unit = text.substr(used);
  double scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  if (unit == "ms") scale = 1;
  if (unit == "m" || unit == "min") scale = 60000;
  if (scale == 0 || !(value * scale >= 1)) throw CLI::ValidationError("--max-wait", "not a duration: " + text);
  return std::chrono::milliseconds(static_cast<std::int64_t>(value * scale + 0.5));
}

std::string backend_list() {
  std::string list;
  for (const auto& name : clouddetect::available_backends()) list += (list.empty() ? "" : ", ") + name;
  return list;
}

// Precisions and resize modes are parsed here, at the edge, into their enums.
const std::map<std::string, clouddetect::Precision> kPrecisions = {{"fp32", clouddetect::Precision::kFp32},
                                                                   {"int8", clouddetect::Precision::kInt8}};

void add_resize_option(CLI::App& app, std::optional<clouddetect::image::ResizeMode>& resize, const std::string& help) {
  app.add_option_function<std::string>(
         "--resize",
         [&resize](const std::string& name) {
           resize = name == "auto" ? std::nullopt : std::optional(clouddetect::image::parse_resize_mode(name));
         },
         help)
      ->envname("CLOUDDETECT_RESIZE")
      ->default_str("auto")
      ->check(CLI::IsMember({"auto", "stretch", "letterbox"}));
}

// bench takes lists of backends and precisions instead of one of each.
void add_model_options(CLI::App& app, ModelOptions& o, bool single_backend = true) {
  app.add_option("--model", o.model_dir, "Model folder: one .cfg, one .weights, one .names")
      ->envname("CLOUDDETECT_MODEL")
      ->capture_default_str();
  if (single_backend) {
    if (o.backend.empty()) o.backend = clouddetect::default_backend();
    app.add_option("--backend", o.backend, "Inference backend (" + backend_list() + ")")
        ->envname("CLOUDDETECT_BACKEND")
        ->capture_default_str();
    app.add_option("--precision", o.precision, "fp32 | int8 (native backend; needs --calibration)")
        ->envname("CLOUDDETECT_PRECISION")
        ->default_str(clouddetect::to_string(o.precision))
        ->transform(CLI::CheckedTransformer(kPrecisions));
  }
  app.add_option("--calibration", o.calibration,
                 "int8 activation ranges from `clouddetect calibrate` (default: MODEL/activation-ranges.json)")
      ->envname("CLOUDDETECT_CALIBRATION");
  add_resize_option(app, o.resize, "auto (the better for the model) | stretch | letterbox");
  app.add_option("--conf", o.conf, "Confidence threshold (objectness x class probability)")
      ->envname("CLOUDDETECT_CONF")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--nms", o.nms, "NMS IoU threshold (per class)")
      ->envname("CLOUDDETECT_NMS")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--threads", o.threads, "Intra-op threads per inference worker")
      ->envname("CLOUDDETECT_THREADS")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
}

// The limits and timeouts of `serve`.
void add_serve_limits(CLI::App& cmd, clouddetect::ServeOptions& serve) {
  cmd.add_option("--max-body-bytes", serve.max_body_bytes, "Largest request body (413 beyond)")
      ->envname("CLOUDDETECT_MAX_BODY_BYTES")
      ->capture_default_str()
      ->check(CLI::Range(1024LL, 1LL << 31));
  cmd.add_option("--max-pixels", serve.max_pixels, "Largest image, width x height (413 beyond)")
      ->envname("CLOUDDETECT_MAX_PIXELS")
      ->capture_default_str()
      ->check(CLI::Range(1LL, 1LL << 31));
  cmd.add_option("--max-connections", serve.max_connections, "Open connections at most")
      ->envname("CLOUDDETECT_MAX_CONNECTIONS")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  cmd.add_option("--header-timeout", serve.header_timeout_s, "Seconds to receive the request headers")
      ->envname("CLOUDDETECT_HEADER_TIMEOUT")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  cmd.add_option("--body-timeout", serve.body_timeout_s, "Seconds to receive the request body")
      ->envname("CLOUDDETECT_BODY_TIMEOUT")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  cmd.add_option("--keepalive-timeout", serve.keepalive_timeout_s, "Seconds an idle keep-alive connection stays open")
      ->envname("CLOUDDETECT_KEEPALIVE_TIMEOUT")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));
  cmd.add_option("--drain-seconds", serve.drain_seconds,
                 "After SIGTERM: seconds to keep accepting while /readyz says 503")
      ->envname("CLOUDDETECT_DRAIN_SECONDS")
      ->capture_default_str()
      ->check(CLI::Range(0, 600));
}

// `serve` and its options, bound to `serve`.
CLI::App* add_serve_command(CLI::App& app, clouddetect::ServeOptions& serve) {
  CLI::App* serve_cmd = app.add_subcommand("serve", "Run the HTTP service");
  add_model_options(*serve_cmd, serve.model);
  serve_cmd->add_option("--host", serve.host, "Listen address")->envname("CLOUDDETECT_HOST")->capture_default_str();
  serve_cmd->add_option("--port", serve.port, "Listen port")
      ->envname("CLOUDDETECT_PORT")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  serve_cmd
      ->add_option("--port-file", serve.port_file,
                   "Once listening, write the bound port (e.g. of --port 0) to this file, atomically")
      ->envname("CLOUDDETECT_PORT_FILE");
  serve_cmd
      ->add_option("--workers", serve.workers,
                   "Inference workers; 0 = the cgroup CPU quota rounded up (here: " +
                       std::to_string(clouddetect::available_cpus()) + ")")
      ->envname("CLOUDDETECT_WORKERS")
      ->capture_default_str()
      ->check(CLI::Range(0, 256));
  serve_cmd->add_option("--io-threads", serve.io_threads, "Network I/O threads")
      ->envname("CLOUDDETECT_IO_THREADS")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  serve_cmd->add_option("--queue", serve.queue, "Requests that may wait for a worker at most; beyond it 503 at once")
      ->envname("CLOUDDETECT_QUEUE")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  serve_cmd
      ->add_option_function<std::string>(
          "--max-wait", [&serve](const std::string& text) { serve.max_wait = parse_duration(text); },
          "Longest expected wait for a worker (e.g. 15s, 500ms; less for a client that sends X-Request-Timeout); "
          "beyond it 503 + Retry-After at once")
      ->envname("CLOUDDETECT_MAX_WAIT")
      ->default_str(std::to_string(serve.max_wait.count()) + "ms");
  serve_cmd
      ->add_option("--memory-limit", serve.memory_limit,
                   "Memory the service may use (e.g. 512MiB); 0 = the container's limit (here: " +
                       std::to_string(clouddetect::available_memory_bytes() >> 20) + " MiB)")
      ->envname("CLOUDDETECT_MEMORY_LIMIT")
      ->capture_default_str()
      ->transform(CLI::AsSizeValue(false));
  add_serve_limits(*serve_cmd, serve);
  serve_cmd->add_option("--log-format", serve.log_format, "json | text")
      ->envname("CLOUDDETECT_LOG_FORMAT")
      ->capture_default_str()
      ->check(CLI::IsMember({"json", "text"}));
  serve_cmd->add_option("--api-key", serve.api_key, "If set, detection needs 'Authorization: Bearer <key>'")
      ->envname("CLOUDDETECT_API_KEY");
  serve_cmd->add_option("--api-key-file", serve.api_key_file, "Read the API key from this file (a mounted secret)")
      ->envname("CLOUDDETECT_API_KEY_FILE")
      ->check(CLI::ExistingFile);
  serve_cmd->add_flag("--protect-metrics", serve.protect_metrics, "With an API key, /metrics needs it too")
      ->envname("CLOUDDETECT_PROTECT_METRICS");
  serve_cmd->add_option("--cors-origins", serve.cors_origins, "Origins allowed by CORS (comma-separated)")
      ->envname("CLOUDDETECT_CORS_ORIGINS")
      ->delimiter(',');
  return serve_cmd;
}

// `bench` and its options, bound to `bench`.
CLI::App* add_bench_command(CLI::App& app, clouddetect::BenchOptions& bench) {
  CLI::App* bench_cmd = app.add_subcommand("bench", "Time backends side by side on the same input");
  add_model_options(*bench_cmd, bench.model, false);
  bench.backends = clouddetect::available_backends();
  bench_cmd
      ->add_option("--backend,--backends", bench.backends,
                   "Backends to compare, comma-separated (" + backend_list() + ")")
      ->delimiter(',')
      ->capture_default_str();
  bench_cmd->add_option("--precision,--precisions", bench.precisions, "Precisions for the native backend (fp32,int8)")
      ->delimiter(',')
      ->default_str(clouddetect::to_string(clouddetect::Precision::kFp32))
      ->transform(CLI::CheckedTransformer(kPrecisions));
  bench_cmd->add_option("--iterations", bench.iterations, "Timed forward passes per backend")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  bench_cmd->add_option("--warmup", bench.warmup, "Untimed passes first")->capture_default_str();
  bench_cmd->add_option("--image", bench.image, "Input image (default: a coco128 image, else synthetic)");
  bench_cmd->add_flag("--accuracy", bench.accuracy, "Also measure mAP@0.5 on --dataset (always done for int8)");
  bench_cmd->add_option("--dataset", bench.dataset,
                        "Labelled images (images/ + labels/, YOLO format; default: $CLOUDDETECT_SHARED/data/coco128)");
  bench_cmd
      ->add_option("--accuracy-conf", bench.accuracy_conf,
                   "Lowest confidence kept for mAP (darknet's `detector map`: 0.005)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  bench_cmd->add_option("--calibration-dataset", bench.calibration_dataset,
                        "Images int8 is calibrated on (DIR/images; default: $CLOUDDETECT_SHARED/data/coco128); "
                        "never scored");
  bench_cmd
      ->add_option("--calibration-images", bench.calibration_images,
                   "int8 without a --calibration file: calibrate on the first N images of --calibration-dataset")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  return bench_cmd;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"CloudDetect: YOLO object detection as a web service"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("clouddetect ") + clouddetect::kVersion);

  clouddetect::ServeOptions serve;
  CLI::App* serve_cmd = add_serve_command(app, serve);

  clouddetect::DetectOptions detect;
  CLI::App* detect_cmd = app.add_subcommand("detect", "Detect objects in image files; prints the API's JSON");
  add_model_options(*detect_cmd, detect.model);
  detect_cmd->add_option("images", detect.images, "Image files")->required()->check(CLI::ExistingFile);
  detect_cmd->add_option("--annotate", detect.annotate, "Write the image with boxes drawn to this JPEG (one image)");
  detect_cmd->add_option("--max-pixels", detect.max_pixels, "Largest image, width x height")
      ->envname("CLOUDDETECT_MAX_PIXELS")
      ->capture_default_str();

  clouddetect::BenchOptions bench;
  CLI::App* bench_cmd = add_bench_command(app, bench);

  clouddetect::CalibrateOptions calibrate;
  CLI::App* calibrate_cmd =
      app.add_subcommand("calibrate", "Measure the activation ranges int8 inference needs, on sample images");
  calibrate_cmd->add_option("--model", calibrate.model.model_dir, "Model folder: one .cfg, one .weights, one .names")
      ->envname("CLOUDDETECT_MODEL")
      ->capture_default_str();
  add_resize_option(*calibrate_cmd, calibrate.model.resize, "auto | stretch | letterbox (as you will serve)");
  calibrate_cmd->add_option("--images", calibrate.images,
                            "Folder of representative images (default: $CLOUDDETECT_SHARED/data/coco128/images)");
  calibrate_cmd->add_option("--limit", calibrate.limit, "Use the first N images (sorted by name)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  calibrate_cmd->add_option("--out", calibrate.out, "Output file (default: MODEL/activation-ranges.json)");
  calibrate_cmd
      ->add_option("--head-error-budget", calibrate.head_error_budget,
                   "Mixed precision: keep the most int8-sensitive convolutions in fp32 until the heads' error "
                   "vs fp32 is at most this (0: all int8)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  calibrate_cmd->add_option("--max-fp32-layers", calibrate.max_fp32_layers, "Mixed precision: at most this many")
      ->capture_default_str()
      ->check(CLI::Range(0, 10000));
  calibrate_cmd
      ->add_option("--sensitivity-images", calibrate.sensitivity_images,
                   "Mixed precision: measure the heads' error on the first N calibration images")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));

  std::string weights_cfg, weights_out;
  unsigned weights_seed = 0;
  CLI::App* weights_cmd =
      app.add_subcommand("make-weights", "Write random weights of the exact layout a cfg needs (for timing)");
  weights_cmd->add_option("cfg", weights_cfg, "Darknet .cfg")->required()->check(CLI::ExistingFile);
  weights_cmd->add_option("out", weights_out, "Output .weights")->required();
  weights_cmd->add_option("--seed", weights_seed, "Random seed")->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  try {
    if (*serve_cmd) return clouddetect::run_serve(serve);
    if (*detect_cmd) return clouddetect::run_detect(detect);
    if (*bench_cmd) return clouddetect::run_bench(bench);
    if (*calibrate_cmd) return clouddetect::run_calibrate(calibrate);
    if (*weights_cmd) return clouddetect::run_make_weights(weights_cfg, weights_out, weights_seed);
  } catch (const clouddetect::Error& e) {
    std::cerr << "clouddetect: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "clouddetect: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
