// Test support for http::Server over real loopback sockets: a deterministic fake handler, a
// server in a thread, a Beast client. Included by the server's test files only.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <future>
#include <mutex>
#include <thread>

#include "api/base64.h"
#include "http/server.h"

namespace clouddetect::http::test_support {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// ---------------------------------------------------------------- fakes

// Keeps log lines in memory.
class MemorySink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::string line(formatted.data(), formatted.size());
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    lines_.push_back(std::move(line));
  }
  void flush_() override {}

 private:
  std::vector<std::string> lines_;
};

// Answers one "dog" per request. Request ids steer it: "block*" waits for open_gate(),
// "throw-<code>" throws, "sleep-<ms>" sleeps.
class FakeDetector {
 public:
  api::DetectResponse operator()(const api::DetectRequest& request, int worker_index) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ++started_;
      worker_indexes_.push_back(worker_index);
      changed_.notify_all();
      if (request.id.rfind("block", 0) == 0) changed_.wait(lock, [this] { return gate_open_; });
    }
    const std::string& id = request.id;
    if (id == "throw-unprocessable") throw Error(ErrorCode::kUnprocessable, "not an image");
    if (id == "throw-too-large") throw Error(ErrorCode::kPayloadTooLarge, "too many pixels");
    if (id == "throw-unavailable") throw Error(ErrorCode::kUnavailable, "busy");
    if (id == "throw-internal") throw Error(ErrorCode::kInternal, "secret detail");
    if (id == "throw-std") throw std::runtime_error("boom");
    if (id.rfind("sleep-", 0) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(id.substr(6))));
    api::DetectResponse response;
    response.id = "ignored: the server echoes the request id";
    response.objects.push_back({"dog", 0.97, {380, 363, 254, 114}});
    if (request.annotate) response.annotated_jpeg = std::string(request.image.begin(), request.image.end());
    return response;
  }

  void close_gate() {
    std::lock_guard<std::mutex> lock(mutex_);
    gate_open_ = false;
  }
  void open_gate() {
    std::lock_guard<std::mutex> lock(mutex_);
    gate_open_ = true;
    changed_.notify_all();
  }
  bool wait_started(int n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return started_ >= n; });
  }
  int started() {
    std::lock_guard<std::mutex> lock(mutex_);
    return started_;
  }
  std::vector<int> worker_indexes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return worker_indexes_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool gate_open_ = true;
  int started_ = 0;
  std::vector<int> worker_indexes_;
};

// A Server on 127.0.0.1:<ephemeral> running in a thread.
class TestServer {
 public:
  explicit TestServer(ServerOptions options = {}, std::function<void(Server&)> setup = nullptr) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.handle_signals = false;
    options.identity = {"pod-1", "node-1", "host-1"};
    sink_ = std::make_shared<MemorySink>();
    options.logger = std::make_shared<spdlog::logger>("test", sink_);
    options.logger->set_pattern("%v");
    server_ = std::make_unique<Server>(options, [this](const api::DetectRequest& r, int w) { return detector_(r, w); });
    if (setup) setup(*server_);
    port_ = server_->bind();
    done_ = std::async(std::launch::async, [this] { server_->run(); });
  }
  ~TestServer() {
    detector_.open_gate();
    server_->shutdown();
    done_.wait();
  }

  unsigned short port() const { return port_; }
  Server& server() { return *server_; }
  FakeDetector& detector() { return detector_; }
  std::vector<std::string> log_lines() { return sink_->lines(); }
  bool stopped_within(std::chrono::milliseconds timeout) {
    return done_.wait_for(timeout) == std::future_status::ready;
  }

 private:
  FakeDetector detector_;
  std::shared_ptr<MemorySink> sink_;
  std::unique_ptr<Server> server_;
  unsigned short port_ = 0;
  std::future<void> done_;
};

// ---------------------------------------------------------------- client

using Request = bhttp::request<bhttp::string_body>;
using Reply = bhttp::response<bhttp::string_body>;

inline std::string detect_body(const std::string& id, std::string_view image = "fake-jpeg-bytes") {
  return R"({"id": ")" + id + R"(", "image": ")" + api::base64_encode(image) + R"("})";
}

inline Request post(const std::string& body, std::string_view content_type = "application/json",
                    std::string_view target = "/api/object_detection") {
  Request request(bhttp::verb::post, target, 11);
  request.set(bhttp::field::host, "127.0.0.1");
  if (!content_type.empty()) request.set(bhttp::field::content_type, content_type);
  request.body() = body;
  request.prepare_payload();
  return request;
}

inline Request get(std::string_view target, unsigned version = 11) {
  Request request(bhttp::verb::get, target, version);
  request.set(bhttp::field::host, "127.0.0.1");
  return request;
}

// A synchronous Beast client on one connection.
class Client {
 public:
  explicit Client(unsigned short port) : stream_(ioc_) {
    stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    stream_.expires_after(10s);
  }

  void send(const Request& request) { bhttp::write(stream_, request); }
  void send_raw(std::string_view bytes) { asio::write(stream_.socket(), asio::buffer(bytes)); }

  Reply receive() {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    parser.skip(false);
    bhttp::read(stream_, buffer_, parser);
    return parser.release();
  }

  Reply request(const Request& request) {
    send(request);
    return receive();
  }

  // True when the server closed the connection (no more bytes) within the stream's expiry.
  bool closed_by_server(std::chrono::milliseconds within = 3s) {
    stream_.expires_after(within);
    char byte;
    beast::error_code ec;
    stream_.read_some(asio::buffer(&byte, 1), ec);
    stream_.expires_after(10s);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

  beast::tcp_stream& stream() { return stream_; }
  beast::flat_buffer& buffer() { return buffer_; }

 private:
  asio::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

inline Reply fetch(unsigned short port, const Request& request) { return Client(port).request(request); }

inline json::value json_of(const Reply& reply) { return json::parse(reply.body()); }

// Checks the contract's error shape: JSON content type, {"id": ..., "error": "..."}.
inline void expect_error(const Reply& reply, int status, const std::optional<std::string>& id,
                         std::string_view message_part = "") {
  EXPECT_EQ(reply.result_int(), status) << reply.body();
  EXPECT_EQ(reply[bhttp::field::content_type], "application/json");
  EXPECT_EQ(reply["X-Served-By"], "pod-1");
  const json::value body = json_of(reply);
  ASSERT_TRUE(body.is_object());
  ASSERT_TRUE(body.as_object().contains("error"));
  EXPECT_TRUE(body.at("error").is_string());
  EXPECT_NE(std::string(body.at("error").as_string()).find(message_part), std::string::npos) << body;
  if (id) {
    EXPECT_EQ(body.at("id"), json::value(*id)) << body;
  } else {
    EXPECT_TRUE(body.at("id").is_null());
  }
}

inline std::string metrics_text(unsigned short port) { return fetch(port, get("/metrics")).body(); }

// Polls /metrics until it contains `line` (e.g. "clouddetect_queue_depth 1").
inline bool wait_for_metric(unsigned short port, const std::string& line, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (metrics_text(port).find(line + "\n") != std::string::npos) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

}  // namespace clouddetect::http::test_support
