#include "http/metrics.h"

#include <algorithm>
#include <charconv>

namespace clouddetect::http {
namespace {

// Reasons always exported, so that rate() works before the first rejection.
// wait: its expected wait was over --max-wait (or it had waited that long when a worker took it);
// memory: what it would hold does not fit the memory budget; queue: --queue requests were waiting;
// shutdown: the server was stopping.
constexpr const char* kRejectReasons[] = {
    "wait",           "memory",           "queue",        "shutdown",   "max_connections",
    "body_too_large", "header_too_large", "unauthorized", "client_gone"};

std::string number(double value) {
  if (value == static_cast<double>(static_cast<long long>(value)) && value > -1e15 && value < 1e15) {
    return std::to_string(static_cast<long long>(value));  // whole numbers (bytes, counts) in full
  }
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, result.ptr);
}

std::string label_value(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void gauge(std::string& out, std::string_view name, std::string_view help, double value) {
  header(out, name, "gauge", help);
  out += name;
  out += ' ';
  out += number(value);
  out += '\n';
}

}  // namespace

Metrics::Metrics(std::vector<std::pair<std::string, std::string>> build_info)
    : bounds_{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60} {
  inference_duration_.buckets.assign(bounds_.size() + 1, 0);
  for (const char* reason : kRejectReasons) rejected_[reason] = 0;
  header(build_info_, "clouddetect_build_info", "gauge", "Always 1; the labels say what is serving.");
  build_info_ += "clouddetect_build_info{";
  for (std::size_t i = 0; i < build_info.size(); ++i) {
    build_info_ += (i ? "," : "") + build_info[i].first + "=\"" + label_value(build_info[i].second) + "\"";
  }
  build_info_ += "} 1\n";
}

void Metrics::observe(Histogram& histogram, double seconds) {
  if (histogram.buckets.empty()) histogram.buckets.assign(bounds_.size() + 1, 0);
  const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin();
  ++histogram.buckets[static_cast<std::size_t>(bucket)];
  histogram.sum += seconds;
  ++histogram.count;
}

void Metrics::count_request(std::string_view route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[{std::string(route), status}];
  observe(request_duration_[std::string(route)], seconds);
}

void Metrics::observe_inference(double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  observe(inference_duration_, seconds);
}

void Metrics::count_rejected(std::string_view reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++rejected_[std::string(reason)];
}

void Metrics::render_histogram(std::string& out, std::string_view name, std::string_view labels,
                               const Histogram& histogram) const {
  const std::string prefix = labels.empty() ? std::string() : std::string(labels) + ",";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += histogram.buckets[i];
    out += name;
    out += "_bucket{" + prefix + "le=\"" + (i < bounds_.size() ? number(bounds_[i]) : "+Inf") + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  const std::string braces = labels.empty() ? std::string() : "{" + std::string(labels) + "}";
  out += std::string(name) + "_sum" + braces + " " + number(histogram.sum) + "\n";
  out += std::string(name) + "_count" + braces + " " + std::to_string(histogram.count) + "\n";
}

std::string Metrics::render(const Gauges& gauges) const {
  std::string out;
  std::lock_guard<std::mutex> lock(mutex_);

  header(out, "clouddetect_http_requests_total", "counter", "HTTP requests answered.");
  for (const auto& [key, count] : requests_) {
    out += "clouddetect_http_requests_total{route=\"" + label_value(key.first) + "\",status=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(count) + "\n";
  }

  header(out, "clouddetect_request_duration_seconds", "histogram",
         "Time from the first byte of a request to the end of its response.");
  for (const auto& [route, histogram] : request_duration_) {
    render_histogram(out, "clouddetect_request_duration_seconds", "route=\"" + label_value(route) + "\"", histogram);
  }

  header(out, "clouddetect_inference_duration_seconds", "histogram",
         "Time spent in the detection handler per request.");
  render_histogram(out, "clouddetect_inference_duration_seconds", "", inference_duration_);

  header(out, "clouddetect_rejected_total", "counter", "Requests or connections refused or dropped, by reason.");
  for (const auto& [reason, count] : rejected_) {
    out += "clouddetect_rejected_total{reason=\"" + label_value(reason) + "\"} " + std::to_string(count) + "\n";
  }

  gauge(out, "clouddetect_queue_depth", "Detection requests waiting for a worker.",
        static_cast<double>(gauges.queue_depth));
  gauge(out, "clouddetect_workers_busy", "Workers running a detection.", static_cast<double>(gauges.workers_busy));
  gauge(out, "clouddetect_in_flight", "Requests read and not yet answered.", static_cast<double>(gauges.in_flight));
  gauge(out, "clouddetect_connections", "Open client connections.", static_cast<double>(gauges.connections));
  gauge(out, "clouddetect_ready", "1 when /readyz answers 200.", gauges.ready ? 1 : 0);
  gauge(out, "clouddetect_expected_wait_seconds",
        "Wait a detection request arriving now can expect before a worker takes it.", gauges.expected_wait_seconds);
  gauge(out, "clouddetect_service_seconds", "Moving estimate of one detection on one worker.", gauges.service_seconds);
  gauge(out, "clouddetect_memory_budget_bytes", "Bytes admitted requests may hold (-1: no limit).",
        gauges.memory_budget_bytes);
  gauge(out, "clouddetect_memory_held_bytes", "Bytes held by admitted requests and connections.",
        gauges.memory_held_bytes);
  out += build_info_;
  return out;
}

}  // namespace clouddetect::http
