// http::Server over real loopback sockets, with a deterministic fake handler: detection, connections
// (keep-alive, pipelining, timeouts, limits), the queue, logs and lifecycle. routes_test.cpp has the
// request rules.

#include "http/server_test_support.h"

namespace clouddetect::http {
namespace {

using namespace test_support;  // the fakes and the client

TEST(Server, DetectionAnswersTheContractShape) {
  TestServer server;
  const Reply reply = fetch(server.port(), post(detect_body("img-1")));
  ASSERT_EQ(reply.result_int(), 200) << reply.body();
  EXPECT_EQ(reply[bhttp::field::content_type], "application/json");
  EXPECT_EQ(reply["X-Served-By"], "pod-1");
  const json::value body = json_of(reply);
  EXPECT_EQ(body.at("id"), "img-1");
  ASSERT_EQ(body.at("objects").as_array().size(), 1u);
  const json::value& object = body.at("objects").at(0);
  EXPECT_EQ(object.at("label"), "dog");
  EXPECT_DOUBLE_EQ(object.at("accuracy").to_number<double>(), 0.97);
  EXPECT_EQ(object.at("rectangle").at("left"), 380);
  EXPECT_EQ(object.at("rectangle").at("top"), 363);
  EXPECT_EQ(object.at("rectangle").at("width"), 254);
  EXPECT_EQ(object.at("rectangle").at("height"), 114);
  EXPECT_FALSE(body.as_object().contains("annotated_image"));
}

TEST(Server, AnnotatedImageIsBase64) {
  TestServer server;
  const Reply reply = fetch(
      server.port(), post(R"({"id": "a", "image": ")" + api::base64_encode("JPEGDATA") + R"(", "annotate": true})"));
  ASSERT_EQ(reply.result_int(), 200) << reply.body();
  EXPECT_EQ(json_of(reply).at("annotated_image"), json::value(api::base64_encode("JPEGDATA")));
}

TEST(Server, MetricsCountRequests) {
  TestServer server;
  fetch(server.port(), post(detect_body("m")));
  fetch(server.port(), get("/nope"));
  // Requests are counted once their response is written, maybe after the client has read it.
  ASSERT_TRUE(wait_for_metric(server.port(), "clouddetect_http_requests_total{route=\"other\",status=\"404\"} 1"));
  ASSERT_TRUE(wait_for_metric(server.port(),
                              "clouddetect_http_requests_total{route=\"/api/object_detection\",status=\"200\"} 1"));
  const std::string text = metrics_text(server.port());
  for (const char* part : {
           "clouddetect_http_requests_total{route=\"/api/object_detection\",status=\"200\"} 1\n",
           "clouddetect_http_requests_total{route=\"other\",status=\"404\"} 1\n",
           "clouddetect_request_duration_seconds_bucket{route=\"/api/"
           "object_detection\",le=\"+Inf\"} 1\n",
           "clouddetect_inference_duration_seconds_count 1\n",
           "clouddetect_queue_depth 0\n",
           "clouddetect_in_flight 1\n",  // the /metrics request itself
           "clouddetect_connections 1\n",
           "clouddetect_rejected_total{reason=\"queue\"} 0\n",
       }) {
    EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
  }
  const Reply reply = fetch(server.port(), get("/metrics"));
  EXPECT_EQ(reply[bhttp::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
}

TEST(Server, KeepAliveReusesOneConnection) {
  TestServer server;
  Client client(server.port());
  for (int i = 0; i < 5; ++i) {
    const Reply reply = client.request(post(detect_body("k" + std::to_string(i))));
    ASSERT_EQ(reply.result_int(), 200);
    EXPECT_TRUE(reply.keep_alive());
    EXPECT_EQ(json_of(reply).at("id"), json::value("k" + std::to_string(i)));
  }
  // Errors that leave no unread body keep the connection too.
  EXPECT_EQ(client.request(get("/nope")).result_int(), 404);
  const Reply metrics = client.request(get("/metrics"));
  EXPECT_NE(metrics.body().find("clouddetect_connections 1\n"), std::string::npos);
}

TEST(Server, Http10ClosesUnlessKeepAlive) {
  TestServer server;
  {
    Client client(server.port());
    Request request = post(detect_body("old"));
    request.version(10);
    const Reply reply = client.request(request);
    EXPECT_EQ(reply.result_int(), 200);
    EXPECT_EQ(reply.version(), 10u);
    EXPECT_FALSE(reply.keep_alive());
    EXPECT_TRUE(client.closed_by_server());
  }
  Client client(server.port());
  Request request = get("/healthz", 10);
  request.keep_alive(true);
  for (int i = 0; i < 2; ++i) {
    const Reply reply = client.request(request);
    EXPECT_EQ(reply.result_int(), 200);
    EXPECT_EQ(reply.version(), 10u);
    EXPECT_TRUE(reply.keep_alive());
  }
}

TEST(Server, PipelinedRequestsAreAnsweredInOrder) {
  ServerOptions options;
  options.workers = 3;
  TestServer server(options);
  Client client(server.port());
  std::string bytes;
  for (const char* id : {"sleep-50", "p2", "sleep-20"}) {
    std::ostringstream text;
    text << post(detect_body(id));
    bytes += text.str();
  }
  std::ostringstream health;
  health << get("/healthz");
  bytes += health.str();
  client.send_raw(bytes);
  for (const char* id : {"sleep-50", "p2", "sleep-20"}) {
    const Reply reply = client.receive();
    ASSERT_EQ(reply.result_int(), 200);
    EXPECT_EQ(json_of(reply).at("id"), id);
  }
  EXPECT_EQ(client.receive().body(), R"({"status":"ok"})");
}

TEST(Server, FullQueueAnswers503AtOnce) {
  ServerOptions options;
  options.workers = 1;
  options.max_queue = 1;
  TestServer server(options);
  server.detector().close_gate();
  auto first = std::async(std::launch::async, [&] { return fetch(server.port(), post(detect_body("block-1"))); });
  ASSERT_TRUE(server.detector().wait_started(1));
  auto second = std::async(std::launch::async, [&] { return fetch(server.port(), post(detect_body("block-2"))); });
  ASSERT_TRUE(wait_for_metric(server.port(), "clouddetect_queue_depth 1"));

  Client client(server.port());
  const Reply rejected = client.request(post(detect_body("third")));
  expect_error(rejected, 503, std::nullopt, "queue is full");
  EXPECT_EQ(rejected[bhttp::field::retry_after], "1");
  // At once: answered while the worker is still held (no wall-clock bound: it flakes on a loaded machine).
  EXPECT_EQ(second.wait_for(0s), std::future_status::timeout);
  EXPECT_TRUE(rejected.keep_alive());  // the body was read: the connection stays usable

  server.detector().open_gate();
  EXPECT_EQ(first.get().result_int(), 200);
  EXPECT_EQ(second.get().result_int(), 200);
  EXPECT_NE(metrics_text(server.port()).find("clouddetect_rejected_total{reason=\"queue\"} 1\n"), std::string::npos);
}

TEST(Server, QueuedJobOfAGoneClientIsSkipped) {
  ServerOptions options;
  options.workers = 1;
  TestServer server(options);
  server.detector().close_gate();
  auto first = std::async(std::launch::async, [&] { return fetch(server.port(), post(detect_body("block-1"))); });
  ASSERT_TRUE(server.detector().wait_started(1));
  {
    Client gone(server.port());
    gone.send(post(detect_body("gone")));
    ASSERT_TRUE(wait_for_metric(server.port(), "clouddetect_queue_depth 1"));
  }  // closes the connection while its job waits
  std::this_thread::sleep_for(100ms);
  server.detector().open_gate();
  EXPECT_EQ(first.get().result_int(), 200);
  EXPECT_TRUE(wait_for_metric(server.port(), "clouddetect_rejected_total{reason=\"client_gone\"} 1"));
  EXPECT_EQ(server.detector().started(), 1);
}

TEST(Server, WorkersGetTheirIndex) {
  ServerOptions options;
  options.workers = 3;
  options.io_threads = 2;
  TestServer server(options);
  std::vector<std::future<Reply>> replies;
  for (int i = 0; i < 12; ++i) {
    replies.push_back(
        std::async(std::launch::async, [&] { return fetch(server.port(), post(detect_body("sleep-10"))); }));
  }
  for (auto& reply : replies) EXPECT_EQ(reply.get().result_int(), 200);
  for (int index : server.detector().worker_indexes()) EXPECT_TRUE(index >= 0 && index < 3) << index;
}

TEST(Server, ExpectContinueGetsInterimResponse) {
  TestServer server;
  Client client(server.port());
  const std::string body = detect_body("cont");
  client.send_raw(
      "POST /api/object_detection HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Expect: 100-continue\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n");
  const Reply interim = client.receive();
  EXPECT_EQ(interim.result_int(), 100);
  client.send_raw(body);
  const Reply reply = client.receive();
  EXPECT_EQ(reply.result_int(), 200);
  EXPECT_EQ(json_of(reply).at("id"), "cont");
}

TEST(Server, TimeoutsCloseSlowAndIdleConnections) {
  ServerOptions options;
  options.header_timeout = 200ms;
  options.keepalive_idle_timeout = 300ms;
  TestServer server(options);
  Client slow(server.port());
  slow.send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\n");  // never finishes the header
  EXPECT_TRUE(slow.closed_by_server(2s));

  Client idle(server.port());
  EXPECT_EQ(idle.request(get("/healthz")).result_int(), 200);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(idle.closed_by_server(2s));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
}

TEST(Server, ConnectionsOverTheLimitGet503) {
  ServerOptions options;
  options.max_connections = 1;
  TestServer server(options);
  Client first(server.port());
  EXPECT_EQ(first.request(get("/healthz")).result_int(), 200);
  Client second(server.port());
  expect_error(second.receive(), 503, std::nullopt, "too many connections");
  EXPECT_EQ(first.request(get("/healthz")).result_int(), 200);
}

TEST(Server, RequestLogIsOneJsonLinePerRequest) {
  TestServer server;
  fetch(server.port(), post(R"({"id": "q\"uote\u0001", "image": "Zm9v"})"));
  fetch(server.port(), get("/nope/\xc3("));
  std::vector<json::object> requests;
  // The line is written once the response is sent, which may be after the client has read it.
  for (int attempt = 0; attempt < 200 && requests.size() < 2; ++attempt) {
    std::this_thread::sleep_for(10ms);
    requests.clear();
    for (const std::string& line : server.log_lines()) {
      const json::value v = json::parse(line);  // every line is JSON
      if (v.at("msg") == "request") requests.push_back(v.as_object());
    }
  }
  ASSERT_EQ(requests.size(), 2u);
  const json::object& detect = requests[0];
  EXPECT_EQ(detect.at("method"), "POST");
  EXPECT_EQ(detect.at("path"), "/api/object_detection");
  EXPECT_EQ(detect.at("status"), 200);
  EXPECT_EQ(detect.at("id"), "q\"uote\x01");
  EXPECT_EQ(detect.at("objects"), 1);
  EXPECT_EQ(detect.at("pod"), "pod-1");
  EXPECT_EQ(detect.at("node"), "node-1");
  EXPECT_EQ(detect.at("host"), "host-1");
  EXPECT_TRUE(detect.at("duration_ms").is_number());
  EXPECT_TRUE(detect.contains("ts"));
  EXPECT_EQ(detect.at("level"), "info");
  EXPECT_EQ(requests[1].at("status"), 404);
  EXPECT_EQ(requests[1].at("path"), "/nope/?(");  // non-ASCII bytes of the target are replaced
  EXPECT_TRUE(requests[1].at("id").is_null());
}

TEST(Server, ShutdownFinishesInFlightRequests) {
  ServerOptions options;
  options.workers = 1;
  auto server = std::make_unique<TestServer>(options);
  server->detector().close_gate();
  Client idle(server->port());
  EXPECT_EQ(idle.request(get("/healthz")).result_int(), 200);
  auto running = std::async(std::launch::async, [&] { return fetch(server->port(), post(detect_body("block-1"))); });
  ASSERT_TRUE(server->detector().wait_started(1));
  auto queued = std::async(std::launch::async, [&] { return fetch(server->port(), post(detect_body("block-2"))); });
  ASSERT_TRUE(wait_for_metric(server->port(), "clouddetect_queue_depth 1"));

  server->server().shutdown();
  EXPECT_TRUE(idle.closed_by_server(2s));       // idle keep-alive connections are closed
  EXPECT_FALSE(server->stopped_within(200ms));  // requests still running
  server->detector().open_gate();
  const Reply first = running.get();
  const Reply second = queued.get();
  EXPECT_EQ(first.result_int(), 200);
  EXPECT_EQ(second.result_int(), 200);
  EXPECT_FALSE(first.keep_alive());
  EXPECT_TRUE(server->stopped_within(3s));
  EXPECT_THROW(Client late(server->port()), boost::system::system_error);  // not listening
}

TEST(Server, DrainKeepsAcceptingButIsNotReady) {
  ServerOptions options;
  options.drain_seconds = std::chrono::seconds(1);
  TestServer server(options);
  server.server().set_ready(true);
  EXPECT_EQ(fetch(server.port(), get("/readyz")).result_int(), 200);
  const auto t0 = std::chrono::steady_clock::now();
  server.server().shutdown();
  std::this_thread::sleep_for(50ms);
  expect_error(fetch(server.port(), get("/readyz")), 503, std::nullopt, "shutting down");
  EXPECT_EQ(fetch(server.port(), post(detect_body("during-drain"))).result_int(), 200);
  EXPECT_TRUE(server.stopped_within(3s));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 900ms);
}

TEST(Server, BindFailsClearly) {
  TestServer first;
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = first.port();
  Server second(options, [](const api::DetectRequest&, int) { return api::DetectResponse{}; });
  try {
    second.bind();
    FAIL() << "bound a port in use";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:"), std::string::npos);
  }
}

TEST(Server, SigtermStartsGracefulShutdown) {
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.handle_signals = true;
  options.logger = std::make_shared<spdlog::logger>("quiet");  // no sinks
  Server server(options, [](const api::DetectRequest&, int) { return api::DetectResponse{}; });
  const unsigned short port = server.bind();
  auto done = std::async(std::launch::async, [&] { server.run(); });
  // A served request proves run() has installed its signal handling.
  ASSERT_EQ(fetch(port, get("/healthz")).result_int(), 200);
  std::raise(SIGTERM);
  EXPECT_EQ(done.wait_for(5s), std::future_status::ready);
}

}  // namespace
}  // namespace clouddetect::http
