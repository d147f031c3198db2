// `clouddetect serve`: the HTTP server answers /healthz at once; the model loads and warms up
// beside it, and only then does /readyz turn 200 (what Kubernetes' startup and readiness probes need).
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <ctime>
#include <fstream>
#include <memory>
#include <opencv2/core/utility.hpp>
#include <thread>

#include "backends/cpu_features.h"
#include "core/cpu_quota.h"
#include "core/error.h"
#include "darknet/model_loader.h"
#include "http/server.h"
#include "main/commands.h"
#include "main/detection_service.h"
#include "web/assets.h"

namespace clouddetect {
namespace {

http::ServerOptions server_options(const ServeOptions& o, int workers, std::shared_ptr<spdlog::logger> logger) {
  http::ServerOptions s;
  s.host = o.host;
  s.port = static_cast<unsigned short>(o.port);
  s.io_threads = o.io_threads;
  s.workers = workers;
  s.max_queue = static_cast<std::size_t>(o.queue);
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

// A lifecycle line in the same format as the request log.
void log_event(spdlog::logger& logger, const std::string& format, const std::string& message,
               const std::string& json_fields = "") {
  if (format == "json") {
    char ts[32];
    std::time_t now = std::time(nullptr);
    std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    logger.info("{{\"ts\":\"{}\",\"level\":\"info\",\"msg\":\"{}\"{}{}}}", ts, message, json_fields.empty() ? "" : ",",
                json_fields);
  } else {
    logger.info("{} {}", message, json_fields);
  }
}

}  // namespace

int run_serve(ServeOptions options) {
  const int workers = options.workers > 0 ? options.workers : available_cpus();
  // Each worker runs one inference at a time; OpenCV's pool is global, sized per inference.
  cv::setNumThreads(options.model.threads);

  auto logger = spdlog::stdout_logger_mt("clouddetect");
  logger->set_pattern(options.log_format == "json" ? "%v" : "%Y-%m-%dT%H:%M:%S.%e %v");
  logger->flush_on(spdlog::level::info);

  std::atomic<std::shared_ptr<DetectionService>*> service_slot{nullptr};
  std::shared_ptr<DetectionService> service;
  http::Server server(server_options(options, workers, logger),
                      [&service_slot](const api::DetectRequest& request, int worker) {
                        std::shared_ptr<DetectionService>* loaded = service_slot.load(std::memory_order_acquire);
                        if (!loaded) throw Error(ErrorCode::kUnavailable, "the model is still loading");
                        return (*loaded)->run(request, worker);
                      });
  for (const auto& asset : web::assets()) {
    server.add_static_route(asset.path, asset.content_type, std::string(asset.body));
  }
  server.bind();  // fails early (port in use) before the model is loaded; the server logs the address

  std::exception_ptr load_error;
  std::thread loader([&] {
    try {
      auto model = darknet::load_model(options.model.model_dir);
      const CpuFeatures cpu = detect_cpu_features();
      service = std::make_shared<DetectionService>(model, options.model, workers, options.max_pixels);
      service->warm_up();
      service_slot.store(&service, std::memory_order_release);
      server.set_ready(true);
      log_event(*logger, options.log_format, "ready",
                "\"model\":\"" + model->name + "\",\"backend\":\"" + options.model.backend + "\",\"input\":" +
                    std::to_string(model->width) + ",\"classes\":" + std::to_string(model->num_classes()) +
                    ",\"kernels\":\"" + service->kernel_summary() + "\",\"precision\":\"" + options.model.precision +
                    "\"," + cpu_features_json(cpu));
      if (const std::string advice = precision_advice(cpu, options.model.precision); !advice.empty()) {
        log_event(*logger, options.log_format, advice);
      }
    } catch (...) {
      load_error = std::current_exception();
      server.shutdown();
    }
  });
  server.run();
  loader.join();
  if (load_error) std::rethrow_exception(load_error);
  log_event(*logger, options.log_format, "stopped");
  return 0;
}

}  // namespace clouddetect
