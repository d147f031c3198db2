// One log line per request, plus lifecycle events, as JSON lines (default) or text.
// Threading: every method may be called from any thread (spdlog *_mt sinks).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/server.h"

namespace clouddetect::http {

struct RequestLogEntry {
  std::string_view method;
  std::string_view path;  // raw request target; sanitized when written
  int status = 0;
  double duration_ms = 0;
  std::optional<std::string> id;
  int objects = -1;      // -1 = not a detection answer (written as null)
  double queue_ms = -1;  // time waiting for a worker; -1 = did not wait (not written)
  std::string_view error;
  std::string_view rejected;  // refused before running: wait | memory | queue | shutdown
};

class RequestLog {
 public:
  // `logger` null: a new stdout logger (pattern "%v" for json); a given logger is used as is (give
  // it the "%v" pattern for json lines).
  RequestLog(std::shared_ptr<spdlog::logger> logger, bool json, InstanceIdentity identity);

  using Fields = std::vector<std::pair<std::string, std::string>>;

  void request(const RequestLogEntry& entry) const;
  // A lifecycle line (e.g. "ready", "stopped"), with extra string fields and, in JSON, members
  // already written as JSON (`"name":value,...`).
  void info(std::string_view message, const Fields& fields = {}, std::string_view json_members = {}) const;
  void warn(std::string_view message) const;
  void error(std::string_view message) const;

  // The line request() writes (exposed for tests).
  std::string format_request(const RequestLogEntry& entry) const;

 private:
  std::string format_event(std::string_view level, std::string_view message, const Fields& fields = {},
                           std::string_view json_members = {}) const;
  void append_identity(std::string& out) const;

  std::shared_ptr<spdlog::logger> logger_;
  bool json_;
  InstanceIdentity identity_;
};

}  // namespace clouddetect::http
