#include "http/server_core.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>

#include "api/json_codec.h"
#include "http/process_stats.h"

namespace clouddetect::http {
namespace {

constexpr std::string_view kJson = "application/json";
// Of the memory limit, kept free for what no reservation counts: allocator slack, stacks, logs.
constexpr double kMemoryHeadroom = 0.1;
// Parsing a body holds its JSON string and the decoded image bytes beside the body itself.
constexpr std::int64_t kParseBytesPerBodyByte = 2;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The client's own timeout for a request, when it announces one: X-Request-Timeout in seconds, or the
// route timeout that Envoy (and so Istio) passes upstream in milliseconds. nullopt: none announced;
// a value <= 0: malformed.
std::optional<double> announced_timeout_seconds(const Request& request) {
  auto parse = [](std::string_view text, double unit) -> std::optional<double> {
    if (text.empty()) return std::nullopt;
    double value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value) || value <= 0) return -1.0;
    return value * unit;
  };
  if (std::optional<double> seconds = parse(request[kTimeoutHeader], 1)) return seconds;
  return parse(request[kEnvoyTimeoutHeader], 1e-3);
}

// application/json with any parameters (charset=utf-8); an absent header is accepted too.
bool is_json_media_type(std::string_view content_type) {
  if (trim(content_type).empty()) return true;
  return iequals(trim(content_type.substr(0, content_type.find(';'))), kJson);
}

// Compares in time that depends only on the lengths.
bool constant_time_equal(std::string_view a, std::string_view b) {
  const std::size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (std::size_t i = 0; i < n; ++i) {
    const auto x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0u;
    const auto y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0u;
    diff |= x ^ y;
  }
  return diff == 0;
}

bool authorized(std::string_view header, const std::string& api_key) {
  constexpr std::string_view kBearer = "bearer ";
  if (header.size() < kBearer.size() || !iequals(header.substr(0, kBearer.size()), kBearer)) {
    return false;
  }
  return constant_time_equal(trim(header.substr(kBearer.size())), api_key);
}

std::string allow_header(const Route& route, bool cors) {
  std::string allow(bhttp::to_string(route.method));
  if (route.method == bhttp::verb::get) allow += ", HEAD";
  if (cors) allow += ", OPTIONS";
  return allow;
}

}  // namespace

ServerCore::ServerCore(const ServerOptions& server_options, DetectHandler handler)
    : options(server_options),
      log(server_options.logger, server_options.log_format != "text", server_options.identity),
      metrics(server_options.build_info),
      queue(server_options.max_queue, server_options.workers),
      memory(server_options.memory_limit_bytes > 0 ? std::function<std::int64_t()>([this] { return memory_capacity(); })
                                                   : std::function<std::int64_t()>()),
      handler_(std::move(handler)),
      served_by_(!server_options.identity.pod.empty() ? server_options.identity.pod : server_options.identity.host) {
  // The route table: method, path, auth, body rules and what answers, one line each.
  using Auth = Route::Auth;
  const auto post = bhttp::verb::post, get = bhttp::verb::get;
  for (Route route : {
           Route{post, "/api/object_detection", Auth::kApiKey, true, true, false, nullptr},
           Route{get, "/healthz", Auth::kOpen, false, false, false,
                 [this] { return make_response(Status::ok, kJson, R"({"status":"ok"})"); }},
           Route{get, "/readyz", Auth::kOpen, false, false, false, [this] { return readiness(); }},
           Route{get, "/metrics", Auth::kApiKeyIfMetricsProtected, false, false, false,
                 [this] { return metrics_page(); }},
       }) {
    routes_.emplace(route.path, std::move(route));
  }
}

void ServerCore::add_static_route(const std::string& path, const std::string& content_type, std::string body) {
  if (path.empty() || path.front() != '/') {
    throw Error(ErrorCode::kInvalidArgument, "static route path must start with '/': " + path);
  }
  if (routes_.count(path) != 0) {
    throw Error(ErrorCode::kInvalidArgument, "route already exists: " + path);
  }
  Route route{bhttp::verb::get, path, Route::Auth::kOpen, false, false, true, nullptr};
  route.answer = [this, content_type, body = std::move(body)] { return make_response(Status::ok, content_type, body); };
  routes_.emplace(path, std::move(route));
}

const Route* ServerCore::find_route(std::string_view path) const {
  const auto it = routes_.find(path);
  return it == routes_.end() ? nullptr : &it->second;
}

std::string ServerCore::cors_origin_for(std::string_view origin) const {
  if (origin.empty()) return {};
  for (const std::string& allowed : options.cors_origins) {
    if (allowed == "*" || allowed == origin) return std::string(origin);
  }
  return {};
}

Response ServerCore::make_response(Status status, std::string_view content_type, std::string body) const {
  Response response;
  response.result(status);
  response.set(bhttp::field::content_type, content_type);
  response.body() = std::move(body);
  return response;
}

Response ServerCore::error_response(Status status, const std::optional<std::string>& id, std::string_view message,
                                    double retry_after_seconds) const {
  return error_response(status, api::error_body(id, message), retry_after_seconds);
}

Response ServerCore::error_response(Status status, std::string json_body, double retry_after_seconds) const {
  Response response = make_response(status, kJson, std::move(json_body));
  if (status == Status::service_unavailable) {
    const double seconds = std::ceil(std::min(std::max(retry_after_seconds, 1.0), 3600.0));
    response.set(bhttp::field::retry_after, std::to_string(static_cast<int>(seconds)));
  }
  return response;
}

const char* rejection_label(Rejection reason) {
  switch (reason) {
    case Rejection::kWait:
      return "wait";
    case Rejection::kMemory:
      return "memory";
    case Rejection::kQueue:
      return "queue";
    case Rejection::kShutdown:
      return "shutdown";
  }
  return "unknown";
}

void ServerCore::count_rejection(Rejection reason) { metrics.count_rejected(rejection_label(reason)); }

double ServerCore::service_seconds() const { return options.work_model ? options.work_model->service_seconds() : 0; }

double ServerCore::max_wait_seconds() const { return std::chrono::duration<double>(options.max_wait).count(); }

double ServerCore::wait_budget_seconds(const Request& request) const {
  const std::optional<double> timeout = announced_timeout_seconds(request);
  if (!timeout || *timeout <= 0) return max_wait_seconds();
  return std::clamp(*timeout - service_seconds(), 0.0, max_wait_seconds());
}

std::int64_t ServerCore::memory_capacity() const {
  const auto usable =
      static_cast<std::int64_t>(static_cast<double>(options.memory_limit_bytes) * (1 - kMemoryHeadroom));
  return usable - (options.work_model ? options.work_model->footprint_bytes() : 0);
}

std::optional<Response> ServerCore::precheck(const Request& request, const Route* route,
                                             const std::string& cors_origin) const {
  if (route == nullptr) {
    std::string_view target = request.target();
    target = target.substr(0, target.find('?'));
    if (target.size() > 200) target = target.substr(0, 200);
    return error_response(Status::not_found, std::nullopt, "not found: " + std::string(target));
  }
  if (request.method() == bhttp::verb::options && !cors_origin.empty()) {
    Response preflight = make_response(Status::no_content, "text/plain", "");
    preflight.erase(bhttp::field::content_type);
    preflight.set(bhttp::field::access_control_allow_methods, allow_header(*route, true));
    preflight.set(bhttp::field::access_control_allow_headers, "Content-Type, Authorization");
    preflight.set(bhttp::field::access_control_max_age, "600");
    return preflight;
  }
  const bool head_of_get = request.method() == bhttp::verb::head && route->method == bhttp::verb::get;
  if (request.method() != route->method && !head_of_get) {
    Response response =
        error_response(Status::method_not_allowed, std::nullopt,
                       "method " + std::string(request.method_string()) + " not allowed on " + route->path);
    response.set(bhttp::field::allow, allow_header(*route, !options.cors_origins.empty()));
    return response;
  }
  const bool needs_key = route->auth == Route::Auth::kApiKey ||
                         (route->auth == Route::Auth::kApiKeyIfMetricsProtected && options.protect_metrics);
  if (needs_key && !options.api_key.empty() && !authorized(request[bhttp::field::authorization], options.api_key)) {
    Response response =
        error_response(Status::unauthorized, std::nullopt, "missing or wrong API key (Authorization: Bearer <key>)");
    response.set(bhttp::field::www_authenticate, "Bearer");
    return response;
  }
  if (!route->json_body) return std::nullopt;
  const std::string_view content_type = request[bhttp::field::content_type];
  if (!is_json_media_type(content_type)) {
    return error_response(status_for(ErrorCode::kUnsupportedMediaType), std::nullopt,
                          "Content-Type must be application/json, got " + std::string(content_type.substr(0, 100)));
  }
  if (const std::optional<double> timeout = announced_timeout_seconds(request); timeout && *timeout <= 0) {
    return error_response(Status::bad_request, std::nullopt,
                          std::string(kTimeoutHeader) + " must be a positive number of seconds (" +
                              std::string(kEnvoyTimeoutHeader) + ": of milliseconds)");
  }
  return std::nullopt;
}

Response ServerCore::readiness() const {
  if (shutting_down) return error_response(Status::service_unavailable, std::nullopt, "shutting down");
  if (!ready) return error_response(Status::service_unavailable, std::nullopt, "not ready");
  return make_response(Status::ok, kJson, R"({"status":"ready"})");
}

Response ServerCore::metrics_page() const {
  Metrics::Gauges gauges;
  gauges.queue_depth = queue.depth();
  gauges.workers_busy = queue.busy();
  gauges.in_flight = in_flight;
  gauges.connections = connections;
  gauges.ready = ready && !shutting_down;
  gauges.service_seconds = service_seconds();
  gauges.expected_wait_seconds = queue.expected_wait(gauges.service_seconds);
  gauges.memory_budget_bytes = memory.limited() ? static_cast<double>(memory.capacity()) : -1;
  gauges.memory_held_bytes = static_cast<double>(memory.held());
  return make_response(Status::ok, "text/plain; version=0.0.4; charset=utf-8",
                       metrics.render(gauges) + ProcessStats::read().render());
}

DetectOutcome ServerCore::detect(const std::string& body, int worker_index, const std::atomic<bool>& cancelled,
                                 WorkQueue::Clock::duration waited, double wait_budget_seconds) {
  DetectOutcome outcome;
  outcome.queue_ms = std::chrono::duration<double, std::milli>(waited).count();
  if (cancelled) {
    outcome.skipped = true;
    metrics.count_rejected("client_gone");
    return outcome;
  }
  auto refuse = [&](Rejection reason, const std::string& message, double retry_after) {
    count_rejection(reason);
    outcome.rejected = reason;
    outcome.status = Status::service_unavailable;
    outcome.retry_after_seconds = retry_after;
    outcome.body = api::error_body(outcome.id, message);
    outcome.log_error = message;
  };
  const double waited_seconds = std::chrono::duration<double>(waited).count();
  if (waited_seconds > wait_budget_seconds) {  // its client may have given up: do not run it
    refuse(Rejection::kWait,
           "overloaded: waited " + std::to_string(waited_seconds) + " s for a worker, over its budget of " +
               std::to_string(wait_budget_seconds) + " s (" + kWaitBudgetRule + "); not run, retry later",
           queue.expected_wait(service_seconds()) - wait_budget_seconds);
    return outcome;
  }
  outcome.memory = memory.reservation(MemoryBudget::Use::kWorking);
  const char* no_memory = "overloaded: not enough memory for this request now, retry later";
  if (!outcome.memory.try_grow(kParseBytesPerBodyByte * static_cast<std::int64_t>(body.size()))) {
    refuse(Rejection::kMemory, no_memory, queue.expected_wait(service_seconds()));
    return outcome;
  }
  api::DetectRequest request;
  try {
    request = api::parse_detect_request(body, options.request_limits);
  } catch (const api::RequestError& e) {
    outcome.id = e.id();
    outcome.status = status_for(e.code());
    outcome.body = api::error_body(outcome.id, e.what());
    outcome.log_error = e.what();
    return outcome;
  }
  outcome.id = request.id;
  if (options.work_model && !outcome.memory.try_grow(options.work_model->working_bytes(request))) {
    refuse(Rejection::kMemory, no_memory, queue.expected_wait(service_seconds()));
    return outcome;
  }
  if (run_handler(request, worker_index, outcome))
    outcome.memory.shrink_to(static_cast<std::int64_t>(outcome.body.size()));
  return outcome;
}

// The handler and the serialization of its answer into `outcome`; false when it failed.
bool ServerCore::run_handler(const api::DetectRequest& request, int worker_index, DetectOutcome& outcome) {
  auto fail = [&](Status status, std::string_view message, std::string log_error) {
    outcome.status = status;
    outcome.body = api::error_body(outcome.id, message);
    outcome.log_error = std::move(log_error);
    outcome.memory.shrink_to(static_cast<std::int64_t>(outcome.body.size()));
    return false;
  };
  const auto start = std::chrono::steady_clock::now();
  auto observe_inference = [&] {
    metrics.observe_inference(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  };
  try {
    api::DetectResponse response = handler_(request, worker_index);
    observe_inference();
    response.id = request.id;
    outcome.objects = static_cast<int>(response.objects.size());
    outcome.body = api::serialize_detect_response(response);
    return true;
  } catch (const Error& e) {
    observe_inference();
    const Status status = status_for(e.code());
    return fail(status, status == Status::internal_server_error ? "internal error" : e.what(), e.what());
  } catch (const std::exception& e) {
    observe_inference();
    return fail(Status::internal_server_error, "internal error", e.what());
  } catch (...) {
    observe_inference();
    return fail(Status::internal_server_error, "internal error", "unknown exception");
  }
}

std::uint64_t ServerCore::add_session(std::weak_ptr<Session> session) {
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  const std::uint64_t id = ++next_session_id_;
  sessions_.emplace(id, std::move(session));
  return id;
}

void ServerCore::remove_session(std::uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(sessions_mutex_);
    sessions_.erase(id);
  }
  --connections;
  if (on_session_removed) on_session_removed();
}

std::vector<std::shared_ptr<Session>> ServerCore::sessions() const {
  std::vector<std::shared_ptr<Session>> result;
  std::lock_guard<std::mutex> lock(sessions_mutex_);
  for (const auto& [id, weak] : sessions_) {
    if (auto session = weak.lock()) result.push_back(std::move(session));
  }
  return result;
}

}  // namespace clouddetect::http
