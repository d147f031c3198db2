// The request rules of http::Server over real loopback sockets: routes, methods, statuses and error
// bodies, Content-Type, limits, API key and CORS (server_test.cpp has connections and lifecycle).

#include "http/server_core.h"
#include "http/server_test_support.h"

namespace clouddetect::http {
namespace {

using namespace test_support;  // the fakes and the client

TEST(StatusFor, MapsEveryErrorCode) {
  EXPECT_EQ(static_cast<int>(status_for(ErrorCode::kInvalidArgument)), 400);
  EXPECT_EQ(static_cast<int>(status_for(ErrorCode::kNotFound)), 404);
  EXPECT_EQ(static_cast<int>(status_for(ErrorCode::kPayloadTooLarge)), 413);
  EXPECT_EQ(static_cast<int>(status_for(ErrorCode::kUnsupportedMediaType)), 415);
  EXPECT_EQ(static_cast<int>(status_for(ErrorCode::kUnprocessable)), 422);
  EXPECT_EQ(static_cast<int>(status_for(ErrorCode::kUnavailable)), 503);
  EXPECT_EQ(static_cast<int>(status_for(ErrorCode::kInternal)), 500);
}

TEST(Server, BadRequestsAre400WithIdWhenKnown) {
  TestServer server;
  expect_error(fetch(server.port(), post("{not json")), 400, std::nullopt, "not valid JSON");
  expect_error(fetch(server.port(), post(R"({"id": 7, "image": "Zg=="})")), 400, std::nullopt, "must be a string");
  expect_error(fetch(server.port(), post(R"({"id": "x"})")), 400, "x", "missing field \"image\"");
  expect_error(fetch(server.port(), post(R"({"id": "x", "image": "Zm9v!"})")), 400, "x", "at position 4");
  EXPECT_EQ(server.detector().started(), 0);
}

TEST(Server, HandlerErrorsMapToStatuses) {
  TestServer server;
  expect_error(fetch(server.port(), post(detect_body("throw-unprocessable"))), 422, "throw-unprocessable",
               "not an image");
  expect_error(fetch(server.port(), post(detect_body("throw-too-large"))), 413, "throw-too-large", "too many pixels");
  const Reply unavailable = fetch(server.port(), post(detect_body("throw-unavailable")));
  expect_error(unavailable, 503, "throw-unavailable");
  EXPECT_EQ(unavailable[bhttp::field::retry_after], "1");
  const Reply internal = fetch(server.port(), post(detect_body("throw-internal")));
  expect_error(internal, 500, "throw-internal", "internal error");
  EXPECT_EQ(internal.body().find("secret"), std::string::npos);
  expect_error(fetch(server.port(), post(detect_body("throw-std"))), 500, "throw-std");
}

TEST(Server, RoutesAndMethods) {
  TestServer server;
  expect_error(fetch(server.port(), get("/nope")), 404, std::nullopt, "/nope");
  const Reply wrong_method = fetch(server.port(), get("/api/object_detection"));
  expect_error(wrong_method, 405, std::nullopt);
  EXPECT_EQ(wrong_method[bhttp::field::allow], "POST");
  const Reply post_health = fetch(server.port(), post("{}", "application/json", "/healthz"));
  expect_error(post_health, 405, std::nullopt);
  EXPECT_EQ(post_health[bhttp::field::allow], "GET, HEAD");

  const Reply health = fetch(server.port(), get("/healthz?probe=1"));
  EXPECT_EQ(health.result_int(), 200);
  EXPECT_EQ(health.body(), R"({"status":"ok"})");
  EXPECT_EQ(health["X-Served-By"], "pod-1");
}

TEST(Server, ContentTypeMustBeJson) {
  TestServer server;
  expect_error(fetch(server.port(), post(detect_body("x"), "text/plain")), 415, std::nullopt, "application/json");
  expect_error(fetch(server.port(), post(detect_body("x"), "multipart/form-data; boundary=a")), 415, std::nullopt);
  EXPECT_EQ(fetch(server.port(), post(detect_body("x"), "application/json; charset=utf-8")).result_int(), 200);
  EXPECT_EQ(fetch(server.port(), post(detect_body("x"), "Application/JSON")).result_int(), 200);
  EXPECT_EQ(fetch(server.port(), post(detect_body("x"), "")).result_int(), 200);  // absent
}

TEST(Server, StaticRoutes) {
  TestServer server({}, [](Server& s) {
    s.add_static_route("/", "text/html; charset=utf-8", "<h1>CloudDetect</h1>");
    EXPECT_THROW(s.add_static_route("/healthz", "text/plain", "x"), Error);
    EXPECT_THROW(s.add_static_route("/", "text/plain", "x"), Error);
  });
  const Reply page = fetch(server.port(), get("/"));
  EXPECT_EQ(page.result_int(), 200);
  EXPECT_EQ(page[bhttp::field::content_type], "text/html; charset=utf-8");
  EXPECT_EQ(page.body(), "<h1>CloudDetect</h1>");
}

TEST(Server, ReadinessToggles) {
  TestServer server;
  expect_error(fetch(server.port(), get("/readyz")), 503, std::nullopt, "not ready");
  server.server().set_ready(true);
  const Reply ready = fetch(server.port(), get("/readyz"));
  EXPECT_EQ(ready.result_int(), 200);
  EXPECT_EQ(ready.body(), R"({"status":"ready"})");
  server.server().set_ready(false);
  EXPECT_EQ(fetch(server.port(), get("/readyz")).result_int(), 503);
}

TEST(Server, BodyOverLimitIs413) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  TestServer server(options);
  Client client(server.port());
  const Reply reply = client.request(post(detect_body("big", std::string(2000, 'x'))));
  expect_error(reply, 413, std::nullopt, "larger than 1000 bytes");
  EXPECT_FALSE(reply.keep_alive());
  // Chunked bodies are limited as they arrive.
  Client chunked(server.port());
  chunked.send_raw(
      "POST /api/object_detection HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "800\r\n" +
      std::string(0x800, 'x') + "\r\n0\r\n\r\n");
  expect_error(chunked.receive(), 413, std::nullopt);
}

TEST(Server, HeaderOverLimitIs431AndGarbageIs400) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  TestServer server(options);
  Request request = get("/healthz");
  request.set("X-Big", std::string(4000, 'a'));
  expect_error(fetch(server.port(), request), 431, std::nullopt, "larger than 1024 bytes");

  Client client(server.port());
  client.send_raw("NOT HTTP AT ALL\r\n\r\n");
  const Reply garbage = client.receive();
  expect_error(garbage, 400, std::nullopt, "malformed HTTP request");
  EXPECT_FALSE(garbage.keep_alive());
}

// Regression: Beast 1.81 applies header_limit per parse call, so many small fields sent in
// several reads used to pass any limit (found by tests/reliability: 30 KB of headers got a 200).
TEST(Server, HeaderLimitCountsTheWholeHeaderSentInPieces) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  TestServer server(options);
  Client client(server.port());
  client.send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  for (int i = 0; i < 40; ++i) {
    client.send_raw("X-Field-" + std::to_string(i) + ": " + std::string(40, 'v') + "\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  client.send_raw("\r\n");
  expect_error(client.receive(), 431, std::nullopt, "larger than 1024 bytes");
}

TEST(Server, HeadAnswersLikeGetWithoutBody) {
  TestServer server;
  Client client(server.port());
  client.send_raw("HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string raw;
  char chunk[4096];
  boost::system::error_code ec;
  while (raw.find("{\"status\":\"ok\"}") == std::string::npos) {
    const std::size_t n = client.stream().socket().read_some(asio::buffer(chunk), ec);
    if (ec) break;
    raw.append(chunk, n);
  }
  // The HEAD answer: 200, the Content-Length of GET, no body; then the GET answer follows at once.
  ASSERT_EQ(raw.rfind("HTTP/1.1 200 OK", 0), 0u) << raw;
  const std::size_t second = raw.find("HTTP/1.1 200 OK", 1);
  ASSERT_NE(second, std::string::npos) << raw;
  EXPECT_EQ(raw.substr(second - 4, 4), "\r\n\r\n") << raw;
  EXPECT_NE(raw.substr(0, second).find("Content-Length: 15"), std::string::npos) << raw;
}

TEST(Server, ApiKeyGuardsDetectionOnly) {
  ServerOptions options;
  options.api_key = "s3cret";
  TestServer server(options);
  const Reply missing = fetch(server.port(), post(detect_body("a")));
  expect_error(missing, 401, std::nullopt, "API key");
  EXPECT_EQ(missing[bhttp::field::www_authenticate], "Bearer");
  Request wrong = post(detect_body("a"));
  wrong.set(bhttp::field::authorization, "Bearer s3cre");
  expect_error(fetch(server.port(), wrong), 401, std::nullopt);
  Request right = post(detect_body("a"));
  right.set(bhttp::field::authorization, "Bearer s3cret");
  EXPECT_EQ(fetch(server.port(), right).result_int(), 200);
  EXPECT_EQ(fetch(server.port(), get("/healthz")).result_int(), 200);
  EXPECT_EQ(server.detector().started(), 1);
}

TEST(Server, CorsOnlyForConfiguredOrigins) {
  ServerOptions options;
  options.cors_origins = {"https://app.example"};
  TestServer server(options);
  Request preflight(bhttp::verb::options, "/api/object_detection", 11);
  preflight.set(bhttp::field::origin, "https://app.example");
  preflight.set(bhttp::field::access_control_request_method, "POST");
  const Reply allowed = fetch(server.port(), preflight);
  EXPECT_EQ(allowed.result_int(), 204);
  EXPECT_EQ(allowed[bhttp::field::access_control_allow_origin], "https://app.example");
  EXPECT_EQ(allowed[bhttp::field::access_control_allow_methods], "POST, OPTIONS");
  EXPECT_NE(allowed[bhttp::field::access_control_allow_headers].find("Content-Type"), std::string::npos);

  preflight.set(bhttp::field::origin, "https://evil.example");
  const Reply refused = fetch(server.port(), preflight);
  EXPECT_EQ(refused.result_int(), 405);
  EXPECT_EQ(refused.find(bhttp::field::access_control_allow_origin), refused.end());

  Request request = post(detect_body("c"));
  request.set(bhttp::field::origin, "https://app.example");
  const Reply reply = fetch(server.port(), request);
  EXPECT_EQ(reply.result_int(), 200);
  EXPECT_EQ(reply[bhttp::field::access_control_allow_origin], "https://app.example");
  EXPECT_EQ(reply[bhttp::field::vary], "Origin");
}

TEST(Server, NoCorsHeadersWhenOff) {
  TestServer server;
  Request request = post(detect_body("c"));
  request.set(bhttp::field::origin, "https://app.example");
  const Reply reply = fetch(server.port(), request);
  EXPECT_EQ(reply.find(bhttp::field::access_control_allow_origin), reply.end());
}

}  // namespace
}  // namespace clouddetect::http
