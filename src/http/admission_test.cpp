// Admission by expected wait and by memory, over real loopback sockets (see server.h, WorkModel).
#include <atomic>

#include "http/server_test_support.h"

namespace clouddetect::http {
namespace {

using namespace test_support;  // the fakes and the client

// A work model with figures set by the test.
class FakeWorkModel : public WorkModel {
 public:
  double service_seconds() const override { return service_seconds_; }
  std::int64_t footprint_bytes() const override { return 0; }
  std::int64_t working_bytes(const api::DetectRequest&) const override { return working_bytes_; }

  std::atomic<double> service_seconds_{0};
  std::atomic<std::int64_t> working_bytes_{0};
};

ServerOptions with_model(std::shared_ptr<FakeWorkModel> model, std::chrono::milliseconds max_wait) {
  ServerOptions options;
  options.workers = 1;
  options.max_wait = max_wait;
  options.work_model = std::move(model);
  return options;
}

bool logged(TestServer& server, const std::string& part) {
  for (const std::string& line : server.log_lines()) {
    if (line.find(part) != std::string::npos) return true;
  }
  return false;
}

// 5 s per request, a 6 s budget: the running request and one waiting one (5 s) fit, a third
// (10 s) is refused at once with Retry-After from the estimate (10 - 6 = 4 s).
TEST(Admission, ExpectedWaitOverTheBudgetIs503AtOnce) {
  auto model = std::make_shared<FakeWorkModel>();
  model->service_seconds_ = 5.0;
  TestServer server(with_model(model, 6s));
  server.detector().close_gate();
  auto first = std::async(std::launch::async, [&] { return fetch(server.port(), post(detect_body("block-1"))); });
  ASSERT_TRUE(server.detector().wait_started(1));
  auto second = std::async(std::launch::async, [&] { return fetch(server.port(), post(detect_body("block-2"))); });
  ASSERT_TRUE(wait_for_metric(server.port(), "clouddetect_queue_depth 1"));
  ASSERT_TRUE(wait_for_metric(server.port(), "clouddetect_expected_wait_seconds 10"));

  const Reply refused = fetch(server.port(), post(detect_body("third")));
  EXPECT_EQ(second.wait_for(0s), std::future_status::timeout);  // at once: the worker is still held
  expect_error(refused, 503, std::nullopt, "expected wait");
  EXPECT_EQ(refused[bhttp::field::retry_after], "4");
  server.detector().open_gate();
  EXPECT_EQ(first.get().result_int(), 200);
  EXPECT_EQ(second.get().result_int(), 200);
  EXPECT_TRUE(wait_for_metric(server.port(), "clouddetect_rejected_total{reason=\"wait\"} 1"));
  EXPECT_TRUE(logged(server, R"("status":503)") && logged(server, R"("rejected":"wait")"));
}

// A request that waited longer than --max-wait by the time the worker is free is answered 503
// and never reaches the handler: its client may be gone.
TEST(Admission, RequestThatWaitedPastTheBudgetIsNotRun) {
  auto model = std::make_shared<FakeWorkModel>();  // service time unknown: admitted
  TestServer server(with_model(model, 200ms));
  server.detector().close_gate();
  auto first = std::async(std::launch::async, [&] { return fetch(server.port(), post(detect_body("block-1"))); });
  ASSERT_TRUE(server.detector().wait_started(1));
  auto late = std::async(std::launch::async, [&] { return fetch(server.port(), post(detect_body("late"))); });
  ASSERT_TRUE(wait_for_metric(server.port(), "clouddetect_queue_depth 1"));
  std::this_thread::sleep_for(300ms);
  server.detector().open_gate();
  EXPECT_EQ(first.get().result_int(), 200);
  expect_error(late.get(), 503, std::nullopt, "waited");  // its body is not even parsed
  EXPECT_EQ(server.detector().started(), 1);
  EXPECT_TRUE(wait_for_metric(server.port(), "clouddetect_rejected_total{reason=\"wait\"} 1"));
}

// A client that announces a 7 s timeout (X-Request-Timeout) with 5 s per request: its budget is
// 7 - 5 = 2 s, so behind one running request (5 s expected) it is refused at once, while a client
// without a timeout (budget --max-wait, 60 s) is admitted. The same through Envoy's header.
TEST(Admission, AnnouncedClientTimeoutShortensTheBudget) {
  auto model = std::make_shared<FakeWorkModel>();
  model->service_seconds_ = 5.0;
  TestServer server(with_model(model, 60s));
  server.detector().close_gate();
  auto first = std::async(std::launch::async, [&] { return fetch(server.port(), post(detect_body("block-1"))); });
  ASSERT_TRUE(server.detector().wait_started(1));

  for (auto [header, value] : {std::pair{kTimeoutHeader, "7"}, std::pair{kEnvoyTimeoutHeader, "7000"}}) {
    Request with_timeout = post(detect_body("hurried"));
    with_timeout.set(header, value);
    const Reply refused = fetch(server.port(), with_timeout);
    expect_error(refused, 503, std::nullopt, "announced timeout");
  }
  auto patient = std::async(std::launch::async, [&] { return fetch(server.port(), post(detect_body("patient"))); });
  ASSERT_TRUE(wait_for_metric(server.port(), "clouddetect_queue_depth 1"));
  server.detector().open_gate();
  EXPECT_EQ(first.get().result_int(), 200);
  EXPECT_EQ(patient.get().result_int(), 200);
  EXPECT_TRUE(wait_for_metric(server.port(), "clouddetect_rejected_total{reason=\"wait\"} 2"));
}

TEST(Admission, MalformedAnnouncedTimeoutIs400) {
  TestServer server(with_model(std::make_shared<FakeWorkModel>(), 5s));
  for (const char* value : {"soon", "-1", "0", "1e999", "5s"}) {
    Request request = post(detect_body("odd-timeout"));
    request.set(kTimeoutHeader, value);
    expect_error(fetch(server.port(), request), 400, std::nullopt, "X-Request-Timeout");
  }
  EXPECT_EQ(server.detector().started(), 0);
}

// Memory: limit 400 KB, so 360 KB for requests, 180 KB of it for waiting work (the connection
// itself takes 32 KB). A body of 200 KB is refused from its header alone, before it is sent.
TEST(Admission, BodyOverTheMemoryBudgetIsRefusedFromItsHeader) {
  auto model = std::make_shared<FakeWorkModel>();
  ServerOptions options = with_model(model, 5s);
  options.memory_limit_bytes = 400'000;
  TestServer server(options);
  Client client(server.port());
  client.send_raw(
      "POST /api/object_detection HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 200000\r\n\r\n");
  const Reply refused = client.receive();
  expect_error(refused, 503, std::nullopt, "does not fit in memory");
  EXPECT_GE(std::stoi(std::string(refused[bhttp::field::retry_after])), 1);
  EXPECT_FALSE(refused.keep_alive());  // the body was not read
  EXPECT_TRUE(client.closed_by_server());
  EXPECT_TRUE(logged(server, R"("rejected":"memory")"));

  const std::string fits = detect_body("fits", std::string(60'000, 'j'));  // 80 KB of base64
  EXPECT_EQ(fetch(server.port(), post(fits)).result_int(), 200);
  EXPECT_TRUE(wait_for_metric(server.port(), "clouddetect_memory_held_bytes 32768"));  // the /metrics connection
}

// What the worker would decode does not fit: 503 before the handler runs, then room again.
TEST(Admission, WorkingMemoryThatDoesNotFitIsRefusedWithoutRunning) {
  auto model = std::make_shared<FakeWorkModel>();
  ServerOptions options = with_model(model, 5s);
  options.memory_limit_bytes = 1'000'000;
  TestServer server(options);
  model->working_bytes_ = 2'000'000;
  expect_error(fetch(server.port(), post(detect_body("huge"))), 503, "huge", "not enough memory");
  EXPECT_EQ(server.detector().started(), 0);
  model->working_bytes_ = 100'000;
  EXPECT_EQ(fetch(server.port(), post(detect_body("small"))).result_int(), 200);
  EXPECT_TRUE(wait_for_metric(server.port(), "clouddetect_rejected_total{reason=\"memory\"} 1"));
}

TEST(Admission, MetricsShowTheBudgetTheProcessAndTheBuild) {
  auto model = std::make_shared<FakeWorkModel>();
  model->service_seconds_ = 0.25;
  ServerOptions options = with_model(model, 5s);
  options.memory_limit_bytes = 1'000'000;
  options.build_info = {{"version", "9.9"}, {"model", "m"}};
  TestServer server(options);
  const std::string text = metrics_text(server.port());
  for (const char* part : {"clouddetect_service_seconds 0.25\n", "clouddetect_expected_wait_seconds 0\n",
                           "clouddetect_memory_budget_bytes 900000\n",
                           "clouddetect_build_info{version=\"9.9\",model=\"m\"} 1\n", "process_resident_memory_bytes ",
                           "process_cpu_seconds_total ", "process_open_fds ", "process_start_time_seconds "}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
  }
}

}  // namespace
}  // namespace clouddetect::http
