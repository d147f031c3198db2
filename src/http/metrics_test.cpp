#include "http/metrics.h"

#include <gtest/gtest.h>

#include <ctime>

#include "http/process_stats.h"

namespace clouddetect::http {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Metrics, RendersCountersHistogramsAndGauges) {
  Metrics metrics({{"version", "1.2.3"}, {"model", "yolo \"x\""}});
  metrics.count_request("/healthz", 200, 0.001);
  metrics.count_request("/healthz", 200, 0.002);
  metrics.count_request("/api/object_detection", 503, 0.2);
  metrics.observe_inference(0.07);
  metrics.count_rejected("wait");
  Metrics::Gauges gauges;
  gauges.queue_depth = 3;
  gauges.in_flight = 2;
  gauges.connections = 7;
  gauges.ready = true;
  gauges.expected_wait_seconds = 1.5;
  gauges.memory_budget_bytes = 1000;
  gauges.memory_held_bytes = 250;
  const std::string text = metrics.render(gauges);

  EXPECT_TRUE(contains(text, "# TYPE clouddetect_http_requests_total counter\n"));
  EXPECT_TRUE(contains(text, "clouddetect_http_requests_total{route=\"/healthz\",status=\"200\"} 2\n"));
  EXPECT_TRUE(contains(text, "clouddetect_http_requests_total{route=\"/api/object_detection\",status=\"503\"} 1\n"));
  EXPECT_TRUE(contains(text, "# TYPE clouddetect_request_duration_seconds histogram\n"));
  EXPECT_TRUE(contains(text, "clouddetect_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.005\"} 2\n"));
  EXPECT_TRUE(contains(text, "clouddetect_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 2\n"));
  EXPECT_TRUE(contains(text, "clouddetect_request_duration_seconds_count{route=\"/healthz\"} 2\n"));
  EXPECT_TRUE(contains(text, "clouddetect_inference_duration_seconds_bucket{le=\"0.05\"} 0\n"));
  EXPECT_TRUE(contains(text, "clouddetect_inference_duration_seconds_bucket{le=\"0.1\"} 1\n"));
  EXPECT_TRUE(contains(text, "clouddetect_inference_duration_seconds_sum 0.07\n"));
  EXPECT_TRUE(contains(text, "clouddetect_inference_duration_seconds_count 1\n"));
  EXPECT_TRUE(contains(text, "clouddetect_rejected_total{reason=\"wait\"} 1\n"));
  for (const char* reason : {"memory", "queue", "shutdown"}) {
    EXPECT_TRUE(contains(text, "clouddetect_rejected_total{reason=\"" + std::string(reason) + "\"} 0\n")) << reason;
  }
  EXPECT_TRUE(contains(text, "clouddetect_expected_wait_seconds 1.5\n"));
  EXPECT_TRUE(contains(text, "clouddetect_memory_budget_bytes 1000\n"));
  EXPECT_TRUE(contains(text, "clouddetect_memory_held_bytes 250\n"));
  EXPECT_TRUE(contains(text, "clouddetect_build_info{version=\"1.2.3\",model=\"yolo \\\"x\\\"\"} 1\n"));
  EXPECT_TRUE(contains(text, "clouddetect_rejected_total{reason=\"max_connections\"} 0\n"));
  EXPECT_TRUE(contains(text, "clouddetect_queue_depth 3\n"));
  EXPECT_TRUE(contains(text, "clouddetect_in_flight 2\n"));
  EXPECT_TRUE(contains(text, "clouddetect_connections 7\n"));
  EXPECT_TRUE(contains(text, "clouddetect_ready 1\n"));
}

TEST(ProcessStats, ReadsThisProcess) {
  const ProcessStats stats = ProcessStats::read();
  EXPECT_GT(stats.resident_memory_bytes, 1e6);
  EXPECT_GE(stats.open_fds, 3);  // stdin, stdout, stderr at least
  EXPECT_GE(stats.cpu_seconds, 0);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_GT(stats.start_time_seconds, now - 3600);
  EXPECT_LE(stats.start_time_seconds, now + 1);
  EXPECT_TRUE(contains(stats.render(), "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total "));
}

TEST(Metrics, BucketBoundsAreInclusive) {
  Metrics metrics;
  metrics.observe_inference(0.1);
  const std::string text = metrics.render({});
  EXPECT_TRUE(contains(text, "clouddetect_inference_duration_seconds_bucket{le=\"0.05\"} 0\n"));
  EXPECT_TRUE(contains(text, "clouddetect_inference_duration_seconds_bucket{le=\"0.1\"} 1\n"));
}

}  // namespace
}  // namespace clouddetect::http
