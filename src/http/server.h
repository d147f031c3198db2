// The HTTP front end of CloudDetect: routes, limits, probes, metrics, request log and graceful
// shutdown. It knows JSON, base64 and status codes, and nothing of YOLO or backends.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/detect_types.h"
#include "core/error.h"

namespace spdlog {
class logger;
}

namespace clouddetect::http {

// Who answers: written to every log line; X-Served-By is `pod`, or `host` when pod is empty.
struct InstanceIdentity {
  std::string pod;   // env POD_NAME
  std::string node;  // env NODE_NAME
  std::string host;  // gethostname()

  // POD_NAME, NODE_NAME and the host name of this process.
  static InstanceIdentity from_environment();
};

// What the HTTP layer learns about the work behind POST /api/object_detection without knowing what
// that work is (src/main implements it). Threading: called from any thread at any time.
class WorkModel {
 public:
  virtual ~WorkModel() = default;
  // Seconds one request takes on one worker: a moving estimate; 0 while unknown.
  virtual double service_seconds() const = 0;
  // Bytes the process holds before any request (model, workers' buffers, libraries).
  virtual std::int64_t footprint_bytes() const = 0;
  // Bytes a worker may allocate for `request` beyond its parsed form (decoded image, copies, answer).
  virtual std::int64_t working_bytes(const api::DetectRequest& request) const = 0;
};

// A client may announce its own timeout; a detection request then waits for a worker at most that
// timeout less one service time, so that it is refused at once rather than answered after its client
// has given up.
inline constexpr std::string_view kTimeoutHeader = "X-Request-Timeout";                    // seconds
inline constexpr std::string_view kEnvoyTimeoutHeader = "x-envoy-expected-rq-timeout-ms";  // set by Envoy, Istio
inline constexpr const char* kWaitBudgetRule = "--max-wait, or the client's announced timeout less one service time";

struct ServerOptions {
  std::string host = "0.0.0.0";
  unsigned short port = 5000;     // 0 = an ephemeral port (see Server::bind)
  int io_threads = 1;             // threads running socket I/O; idle connections cost no thread
  int workers = 1;                // threads running the DetectHandler
  std::size_t max_queue = 10000;  // detection requests waiting for a worker; beyond: 503 + Retry-After
  // A detection request is admitted only when its expected wait (work ahead x service time) fits;
  // one that waited longer by the time a worker takes it is answered 503 without running.
  std::chrono::milliseconds max_wait{std::chrono::seconds(15)};
  // Bytes this process may use (the container's limit); > 0: requests reserve what they hold
  // within it, less the work model's footprint, and get 503 beyond. 0 = no memory admission.
  std::int64_t memory_limit_bytes = 0;
  std::shared_ptr<const WorkModel> work_model;  // null: no service time, no footprint, no working bytes
  // Labels of the clouddetect_build_info gauge (version, backend, precision, model).
  std::vector<std::pair<std::string, std::string>> build_info;
  std::size_t max_body_bytes = 16 * 1024 * 1024;  // beyond: 413
  std::size_t max_header_bytes = 16 * 1024;       // beyond: 431
  // From the first byte of a request (or the connection) to the end of its headers.
  std::chrono::milliseconds header_timeout{std::chrono::seconds(10)};
  // Reading the body; also writing the response.
  std::chrono::milliseconds body_timeout{std::chrono::seconds(60)};
  // Waiting for the next request on a keep-alive connection.
  std::chrono::milliseconds keepalive_idle_timeout{std::chrono::seconds(75)};
  std::size_t max_connections = 10000;    // beyond: accept, answer 503 and close
  std::chrono::seconds drain_seconds{0};  // after shutdown(): keep accepting this long, not ready
  bool handle_signals = true;             // SIGTERM/SIGINT inside run() call shutdown()
  std::string log_format = "json";        // "json" (one JSON object per line) | "text"
  InstanceIdentity identity;
  std::string api_key;                    // non-empty: POST /api/object_detection needs "Bearer <key>"
  bool protect_metrics = false;           // with api_key: GET /metrics needs the key too (probes never do)
  std::vector<std::string> cors_origins;  // allowed Origin values ("*" = any); empty = no CORS
  api::RequestLimits request_limits;
  // Where request and lifecycle lines go; null = a new stdout logger ("%v" pattern for json).
  std::shared_ptr<spdlog::logger> logger;
};

// Runs on a worker thread, worker_index in [0, workers); one call per worker at a time, so state
// indexed by worker_index needs no lock. May throw clouddetect::Error (its status from
// status_for, server_core.h) or any std::exception (500).
using DetectHandler = std::function<api::DetectResponse(const api::DetectRequest&, int worker_index)>;

// Routes: POST /api/object_detection, GET /healthz, /readyz, /metrics and static routes.
// Threading: run() blocks and serves on io_threads + workers threads; set_ready() and shutdown()
// may be called from any thread at any time; the other methods only before run().
class Server {
 public:
  Server(ServerOptions options, DetectHandler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves `body` with `content_type` on GET `path` (e.g. "/" and "/openapi.yaml").
  // Throws Error{kInvalidArgument} for a path the server already routes.
  void add_static_route(const std::string& path, const std::string& content_type, std::string body);

  // Binds and listens; returns the bound port (the ephemeral one when options.port is 0).
  // Throws Error{kUnavailable} when the address cannot be bound. run() calls it if needed.
  unsigned short bind();

  // Serves until shutdown completes, then returns. Call at most once.
  void run();

  // /readyz answers 200 only while ready and not shutting down. Starts false.
  void set_ready(bool ready);

  // Bytes admitted requests may hold now (memory_limit_bytes less headroom and footprint);
  // INT64_MAX without a memory limit.
  std::int64_t request_memory_budget() const;

  // A lifecycle line in the request log's format (e.g. "ready" with the model's name); `json_members`:
  // more members already written as JSON (`"name":value,...`), for the JSON format.
  void log_event(std::string_view message, const std::vector<std::pair<std::string, std::string>>& fields = {},
                 std::string_view json_members = {});

  // Starts the graceful shutdown (idempotent): /readyz 503 at once, keep accepting for
  // drain_seconds, stop accepting, finish every accepted request, close idle connections, and
  // make run() return. Thread-safe; not async-signal-safe (signals: options.handle_signals).
  void shutdown();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace clouddetect::http
