// `clouddetect serve`: the HTTP server answers /healthz at once; the model loads and warms up
// beside it, and only then does /readyz turn 200 (what Kubernetes' startup and readiness probes need).
#include <malloc.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <opencv2/core/utility.hpp>
#include <thread>

#include "backends/cpu_features.h"
#include "core/container_limits.h"
#include "core/error.h"
#include "darknet/cfg_parser.h"
#include "darknet/model_loader.h"
#include "darknet/weights_reader.h"
#include "http/server.h"
#include "main/commands.h"
#include "main/detection_service.h"
#include "web/assets.h"

namespace clouddetect {
namespace {

std::string folder_name(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path.substr(path.rfind('/') + 1);
}

std::int64_t memory_limit(const ServeOptions& o) {
  return o.memory_limit > 0 ? o.memory_limit : available_memory_bytes();
}

http::ServerOptions server_options(const ServeOptions& o, int workers, std::shared_ptr<spdlog::logger> logger,
                                   std::shared_ptr<const http::WorkModel> work_model) {
  http::ServerOptions s;
  s.host = o.host;
  s.port = static_cast<unsigned short>(o.port);
  s.io_threads = o.io_threads;
  s.workers = workers;
  s.max_queue = static_cast<std::size_t>(o.queue);
  s.max_wait = o.max_wait;
  s.memory_limit_bytes = memory_limit(o);
  s.work_model = std::move(work_model);
  s.build_info = {{"version", kVersion},
                  {"backend", o.model.backend},
                  {"precision", to_string(o.model.precision)},
                  {"model", folder_name(o.model.model_dir)}};
  s.max_body_bytes = static_cast<std::size_t>(o.max_body_bytes);
  s.max_connections = static_cast<std::size_t>(o.max_connections);
  s.header_timeout = std::chrono::seconds(o.header_timeout_s);
  s.body_timeout = std::chrono::seconds(o.body_timeout_s);
  s.keepalive_idle_timeout = std::chrono::seconds(o.keepalive_timeout_s);
  s.drain_seconds = std::chrono::seconds(o.drain_seconds);
  s.log_format = o.log_format;
  s.identity = http::InstanceIdentity::from_environment();
  s.api_key = o.api_key;
  if (!o.api_key_file.empty()) {
    std::ifstream in(o.api_key_file);
    std::getline(in, s.api_key);
    while (!s.api_key.empty() && std::isspace(static_cast<unsigned char>(s.api_key.back()))) s.api_key.pop_back();
    if (s.api_key.empty()) throw Error(ErrorCode::kInvalidArgument, "API key file " + o.api_key_file + " is empty");
  }
  s.protect_metrics = o.protect_metrics;
  s.cors_origins = o.cors_origins;
  s.logger = std::move(logger);
  return s;
}

// Writes `port` and a newline to `path` through a temporary file and rename(), so that a reader
// never sees a partial file: tools wait for the file instead of scraping the log for the port.
void write_port_file(const std::string& path, unsigned short port) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << port << "\n";
    out.flush();
    if (!out) throw Error(ErrorCode::kInvalidArgument, "cannot write the port file " + temporary);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw Error(ErrorCode::kInvalidArgument, "cannot write the port file " + path + ": " + std::strerror(errno));
  }
}

// Large buffers (request bodies, decoded images) come from mmap and go back to the system when
// freed: with glibc's default, the threshold grows to 32 MiB after the first large free, and such
// buffers then stay in the heap, so the process would hold more than the requests it admitted.
void return_large_buffers_to_the_system() { mallopt(M_MMAP_THRESHOLD, 256 * 1024); }

// The least the memory limit must leave requests beside the model: one photo of a few megapixels
// decoded, the network's input and the request body. Below it the service could answer nothing
// but 503, or be OOM-killed; refusing to start says why instead.
constexpr std::int64_t kMinRequestBytes = 32 << 20;

std::int64_t mib(std::int64_t bytes) { return bytes >> 20; }

// Throws Error{kInvalidArgument} when `budget` (the server's request memory budget) less the
// `model_bytes` the model will still take is below kMinRequestBytes.
void check_model_fits(const ServeOptions& options, const std::string& model, std::int64_t budget,
                      std::int64_t model_bytes, const std::string& what) {
  if (budget - model_bytes >= kMinRequestBytes) return;
  const std::int64_t needs = resident_memory_bytes() + model_bytes;
  throw Error(ErrorCode::kInvalidArgument,
              "model " + model + " needs about " + std::to_string(mib(needs)) + " MiB (" + what + ") plus " +
                  std::to_string(mib(kMinRequestBytes)) + " MiB for requests, but the memory limit is " +
                  std::to_string(mib(memory_limit(options))) + " MiB (" +
                  (options.memory_limit > 0 ? "--memory-limit" : "the container's") +
                  ", less headroom): give the service more memory, or use a smaller model, input size or int8");
}

// Loads the model, refusing it before and after each step where its memory is known not to fit,
// and frees its raw weights once the backends hold their own (prepared) copies.
std::shared_ptr<DetectionService> load_service(const ServeOptions& options, int workers, const http::Server& server,
                                               const std::shared_ptr<ServiceEstimates>& estimates) {
  const darknet::ModelFiles files = darknet::find_model_files(options.model.model_dir);
  const std::string name = folder_name(options.model.model_dir);
  const auto raw_bytes = static_cast<std::int64_t>(std::filesystem::file_size(files.weights));
  BackendOptions backend_options;
  backend_options.precision = options.model.precision;
  const std::int64_t prepared_bytes =
      backend_weights_bytes(options.model.backend, darknet::parse_cfg_file(files.cfg), backend_options, workers);
  check_model_fits(options, name, server.request_memory_budget(), raw_bytes + prepared_bytes,
                   "at most, before activations: its weights, " + std::to_string(mib(raw_bytes)) + " MiB, and the " +
                       options.model.backend + " backend's copies, " + std::to_string(mib(prepared_bytes)) + " MiB");
  auto model = darknet::load_model(options.model.model_dir);
  auto service = std::make_shared<DetectionService>(model, options.model, workers, options.max_pixels, estimates);
  darknet::release_weights(*model);
  check_model_fits(options, name, server.request_memory_budget(), 0, "its prepared weights, before activations");
  service->warm_up();
  check_model_fits(options, name, server.request_memory_budget(), 0, "measured after the warm-up");
  return service;
}

}  // namespace

int run_serve(ServeOptions options) {
  const int workers = options.workers > 0 ? options.workers : available_cpus();
  // Each worker runs one inference at a time; OpenCV's pool is global, sized per inference.
  cv::setNumThreads(options.model.threads);

  return_large_buffers_to_the_system();
  auto logger = spdlog::stdout_logger_mt("clouddetect");
  logger->set_pattern(options.log_format == "json" ? "%v" : "%Y-%m-%dT%H:%M:%S.%e %v");
  logger->flush_on(spdlog::level::info);

  std::atomic<std::shared_ptr<DetectionService>*> service_slot{nullptr};
  std::shared_ptr<DetectionService> service;
  auto estimates = std::make_shared<ServiceEstimates>();
  http::Server server(server_options(options, workers, logger, estimates),
                      [&service_slot](const api::DetectRequest& request, int worker) {
                        std::shared_ptr<DetectionService>* loaded = service_slot.load(std::memory_order_acquire);
                        if (!loaded) throw Error(ErrorCode::kUnavailable, "the model is still loading");
                        return (*loaded)->run(request, worker);
                      });
  for (const auto& asset : web::assets()) {
    server.add_static_route(asset.path, asset.content_type, std::string(asset.body));
  }
  // Fails early (port in use) before the model is loaded; the server logs the address.
  const unsigned short port = server.bind();
  if (!options.port_file.empty()) write_port_file(options.port_file, port);

  std::exception_ptr load_error;
  std::thread loader([&] {
    try {
      service = load_service(options, workers, server, estimates);
      const darknet::Model* model = &service->model();
      const CpuFeatures cpu = detect_cpu_features();
      service_slot.store(&service, std::memory_order_release);
      server.set_ready(true);
      server.log_event("ready",
                       {{"model", model->name},
                        {"backend", options.model.backend},
                        {"precision", to_string(options.model.precision)},
                        {"input", std::to_string(model->width)},
                        {"classes", std::to_string(model->num_classes())},
                        {"kernels", service->kernel_summary()},
                        {"service_ms", std::to_string(estimates->service_seconds() * 1000)},
                        {"footprint_mib", std::to_string(estimates->footprint_bytes() >> 20)},
                        {"memory_budget_mib", std::to_string(server.request_memory_budget() >> 20)}},
                       cpu_features_json(cpu));
      if (const std::string advice = precision_advice(cpu, to_string(options.model.precision)); !advice.empty()) {
        server.log_event(advice);
      }
      if (!service->calibration_advice().empty()) server.log_event(service->calibration_advice());
    } catch (...) {
      load_error = std::current_exception();
      server.shutdown();
    }
  });
  server.run();
  loader.join();
  if (load_error) std::rethrow_exception(load_error);
  return 0;
}

}  // namespace clouddetect
