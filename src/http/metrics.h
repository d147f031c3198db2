// Prometheus counters and histograms of the HTTP layer, rendered as text format 0.0.4.
// Threading: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace clouddetect::http {

class Metrics {
 public:
  // Values read at scrape time from the server.
  struct Gauges {
    std::size_t queue_depth = 0;
    std::size_t workers_busy = 0;
    std::size_t in_flight = 0;
    std::size_t connections = 0;
    bool ready = false;
    double expected_wait_seconds = 0;  // for a detection request arriving now
    double service_seconds = 0;        // the moving estimate per request
    double memory_budget_bytes = -1;   // for requests; -1 = not limited
    double memory_held_bytes = 0;      // reserved by admitted requests and connections
  };

  // `build_info`: the labels of clouddetect_build_info (e.g. version, backend, precision, model).
  explicit Metrics(std::vector<std::pair<std::string, std::string>> build_info = {});
  // `route` must come from a small fixed set (the routed paths, "other").
  void count_request(std::string_view route, int status, double seconds);
  void observe_inference(double seconds);
  void count_rejected(std::string_view reason);
  std::string render(const Gauges& gauges) const;

 private:
  struct Histogram {
    std::vector<std::uint64_t> buckets;  // not cumulative; one per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  void observe(Histogram& histogram, double seconds);
  void render_histogram(std::string& out, std::string_view name, std::string_view labels,
                        const Histogram& histogram) const;

  mutable std::mutex mutex_;
  std::vector<double> bounds_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Histogram> request_duration_;  // by route
  Histogram inference_duration_;
  std::map<std::string, std::uint64_t> rejected_;
  std::string build_info_;  // the rendered gauge line
};

}  // namespace clouddetect::http
