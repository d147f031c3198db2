// Internal to clouddetect_http: the state shared by the Server and its connections (Session),
// the route table, and the detection job. Not part of the public API (see server.h).
// Threading: const methods, atomics, metrics, log and queue may be used from any thread; routes_
// only changes before run().
#pragma once

#include <atomic>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "http/memory_budget.h"
#include "http/metrics.h"
#include "http/request_log.h"
#include "http/server.h"
#include "http/work_queue.h"

namespace clouddetect::http {

namespace bhttp = boost::beast::http;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;
// Statuses by Beast's names (bhttp::status::not_found), never as numbers.
using Status = bhttp::status;
// nginx's 499 for the log and metrics only: the client went away before its answer; never sent.
constexpr Status kClientClosedRequest = static_cast<Status>(499);

// The HTTP status of an error code: 400, 404, 413, 415, 422, 503 or 500. The only such mapping.
Status status_for(ErrorCode code);

class Session;

// One entry of the route table: everything the server checks and does for a path.
struct Route {
  enum class Auth { kOpen, kApiKey, kApiKeyIfMetricsProtected };
  bhttp::verb method = bhttp::verb::get;  // a GET route answers HEAD too
  std::string path;                       // also the metrics label
  Auth auth = Auth::kOpen;
  bool json_body = false;            // the body must be JSON (Content-Type checked from the header)
  bool on_worker = false;            // the body goes to the WorkQueue (detection); else answer() on the I/O thread
  bool cacheable = false;            // without Cache-Control: no-store (static files)
  std::function<Response()> answer;  // routes not on a worker
};

// Why a request was refused before it ran: the metric label and the log line's "rejected" field.
enum class Rejection { kWait, kMemory, kQueue, kShutdown };
const char* rejection_label(Rejection reason);

// What a worker produced for one detection request.
struct DetectOutcome {
  bool skipped = false;  // the client had gone before a worker took the job
  Status status = Status::ok;
  std::string body;  // JSON: the response or an error body
  std::optional<std::string> id;
  int objects = -1;
  std::string log_error;  // for the log line; may say more than the body
  std::optional<Rejection> rejected;
  double retry_after_seconds = 0;
  double queue_ms = -1;              // time waiting for a worker
  MemoryBudget::Reservation memory;  // holds the answer's bytes until it is written
};

class ServerCore {
 public:
  static constexpr const char* kOtherRoute = "other";

  ServerCore(const ServerOptions& options, DetectHandler handler);

  const ServerOptions& options;
  RequestLog log;
  Metrics metrics;
  WorkQueue queue;
  MemoryBudget memory;
  std::atomic<bool> ready{false};
  std::atomic<bool> shutting_down{false};  // not ready any more, still accepting (drain)
  std::atomic<bool> stopping{false};       // not accepting; connections close after their request
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> in_flight{0};

  void add_static_route(const std::string& path, const std::string& content_type, std::string body);
  const Route* find_route(std::string_view path) const;  // path without query; null = unknown

  // The answer to a request whose header is read, before reading its body: 404, 405, 401, 415,
  // or a CORS preflight. nullopt = read the body and go on.
  std::optional<Response> precheck(const Request& request, const Route* route, const std::string& cors_origin) const;
  Response readiness() const;
  Response metrics_page() const;
  // Runs on a worker: parse, handler, serialize. Never throws. `waited`: time in the queue; over
  // `wait_budget_seconds`, the request is refused without running.
  DetectOutcome detect(const std::string& body, int worker_index, const std::atomic<bool>& cancelled,
                       WorkQueue::Clock::duration waited, double wait_budget_seconds);

  // The work model's moving estimate of one detection (0 = unknown) and the wait budget.
  double service_seconds() const;
  double max_wait_seconds() const;
  // The longest this request may wait for a worker (kWaitBudgetRule).
  double wait_budget_seconds(const Request& request) const;
  // Bytes that requests may hold now: the memory limit less headroom and the model's footprint.
  std::int64_t memory_capacity() const;
  // Counts a refusal under its reason, for the metrics.
  void count_rejection(Rejection reason);

  // `origin` if CORS allows it, else "".
  std::string cors_origin_for(std::string_view origin) const;

  Response make_response(Status status, std::string_view content_type, std::string body) const;
  // Every error answer: JSON {"id","error"}; a 503 carries Retry-After (whole seconds, at least 1).
  Response error_response(Status status, const std::optional<std::string>& id, std::string_view message,
                          double retry_after_seconds = 1) const;
  // The same with the JSON error body already made (by a worker).
  Response error_response(Status status, std::string json_body, double retry_after_seconds = 1) const;
  const std::string& served_by() const { return served_by_; }

  // Connection registry, for closing idle keep-alive connections at shutdown.
  std::uint64_t add_session(std::weak_ptr<Session> session);
  void remove_session(std::uint64_t id);  // also decrements `connections`
  std::vector<std::shared_ptr<Session>> sessions() const;
  std::function<void()> on_session_removed;  // set by the server before run()

 private:
  bool run_handler(const api::DetectRequest& request, int worker_index, DetectOutcome& outcome);

  DetectHandler handler_;
  std::string served_by_;
  std::map<std::string, Route, std::less<>> routes_;
  mutable std::mutex sessions_mutex_;
  std::uint64_t next_session_id_ = 0;
  std::map<std::uint64_t, std::weak_ptr<Session>> sessions_;
};

}  // namespace clouddetect::http
