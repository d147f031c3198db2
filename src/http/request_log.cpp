#include "http/request_log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "api/json_text.h"

namespace clouddetect::http {
namespace {

// ISO 8601 UTC with milliseconds, e.g. 2026-11-29T10:05:18.123Z.
std::string utc_timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms.count()));
  return buf;
}

// Request targets come from clients: keep printable ASCII only, and at most 512 bytes.
std::string sanitize_path(std::string_view path) {
  constexpr std::size_t kMax = 512;
  std::string out;
  for (char c : path.substr(0, kMax)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (path.size() > kMax) out += "...";
  return out;
}

void field(std::string& out, std::string_view name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  api::append_json_string(out, value);
}

}  // namespace

RequestLog::RequestLog(std::shared_ptr<spdlog::logger> logger, bool json, InstanceIdentity identity)
    : logger_(std::move(logger)), json_(json), identity_(std::move(identity)) {
  if (!logger_) {
    logger_ = std::make_shared<spdlog::logger>("clouddetect.http", std::make_shared<spdlog::sinks::stdout_sink_mt>());
    if (json_) logger_->set_pattern("%v");
    logger_->flush_on(spdlog::level::info);
  }
}

void RequestLog::append_identity(std::string& out) const {
  field(out, "pod", identity_.pod);
  field(out, "node", identity_.node);
  field(out, "host", identity_.host);
}

std::string RequestLog::format_request(const RequestLogEntry& entry) const {
  const std::string path = sanitize_path(entry.path);
  std::string out;
  if (json_) {
    out += "{\"ts\":\"" + utc_timestamp() + "\",\"level\":\"info\",\"msg\":\"request\"";
    field(out, "method", entry.method);
    field(out, "path", path);
    out += ",\"status\":" + std::to_string(entry.status);
    out += ",\"duration_ms\":";
    api::append_json_number(out, entry.duration_ms, 4);
    out += ",\"id\":";
    if (entry.id) {
      api::append_json_string(out, *entry.id);
    } else {
      out += "null";
    }
    out += ",\"objects\":" + (entry.objects >= 0 ? std::to_string(entry.objects) : "null");
    if (entry.queue_ms >= 0) {
      out += ",\"queue_ms\":";
      api::append_json_number(out, entry.queue_ms, 4);
    }
    if (!entry.error.empty()) field(out, "error", entry.error);
    if (!entry.rejected.empty()) field(out, "rejected", entry.rejected);
    append_identity(out);
    out += '}';
  } else {
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.1fms", entry.duration_ms);
    out += std::string(entry.method) + " " + path + " " + std::to_string(entry.status) + " " + duration;
    if (entry.id) {
      out += " id=";
      api::append_json_string(out, *entry.id);
    }
    if (entry.objects >= 0) out += " objects=" + std::to_string(entry.objects);
    if (!entry.error.empty()) {
      out += " error=";
      api::append_json_string(out, entry.error);
    }
    if (!entry.rejected.empty()) out += " rejected=" + std::string(entry.rejected);
    out += " pod=" + identity_.pod + " node=" + identity_.node + " host=" + identity_.host;
  }
  return out;
}

std::string RequestLog::format_event(std::string_view level, std::string_view message, const Fields& fields,
                                     std::string_view json_members) const {
  if (!json_) {
    std::string out(message);
    for (const auto& [name, value] : fields) {
      out += " " + name + "=";
      api::append_json_string(out, value);
    }
    return out;
  }
  std::string out = "{\"ts\":\"" + utc_timestamp() + "\"";
  field(out, "level", level);
  field(out, "msg", message);
  for (const auto& [name, value] : fields) field(out, name, value);
  if (!json_members.empty()) {
    out += ',';
    out += json_members;
  }
  append_identity(out);
  out += '}';
  return out;
}

void RequestLog::request(const RequestLogEntry& entry) const {
  if (!logger_->should_log(spdlog::level::info)) return;
  logger_->info(format_request(entry));
}

void RequestLog::info(std::string_view message, const Fields& fields, std::string_view json_members) const {
  if (!logger_->should_log(spdlog::level::info)) return;
  logger_->info(format_event("info", message, fields, json_members));
}

void RequestLog::warn(std::string_view message) const { logger_->warn(format_event("warn", message)); }

void RequestLog::error(std::string_view message) const { logger_->error(format_event("error", message)); }

}  // namespace clouddetect::http
