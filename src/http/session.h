// Internal to clouddetect_http: one client connection. Reads requests one at a time (pipelined
// requests wait in the buffer), answers each with one write, keeps the connection alive when
// allowed. Detection requests go to the WorkQueue; while one waits, the socket is watched so that
// a client that disconnects gets its job skipped.
// Threading: every handler runs on the connection's strand; close_if_idle() is thread-safe.
// Lifetime: owned by shared_ptrs held by pending operations and queued jobs.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "http/server_core.h"

namespace clouddetect::http {

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `memory`: what the connection itself holds (buffers), reserved by the server.
  Session(ServerCore& core, boost::asio::ip::tcp::socket socket, MemoryBudget::Reservation memory);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start();
  // Closes the connection if it waits for a next request (used at shutdown).
  void close_if_idle();

 private:
  enum class State { kIdle, kReading, kProcessing, kWriting, kClosing };
  // The request being served.
  struct Current {
    bool active = false;  // counted in in_flight, not yet logged
    std::chrono::steady_clock::time_point start;
    std::string method = "-";
    std::string target = "-";
    const Route* route = nullptr;
    unsigned version = 11;
    bool keep_alive = true;
    bool must_close = false;  // the body was not read, or the request was malformed
    bool head = false;        // HEAD: the answer of GET without its body
    std::string cors_origin;
    std::optional<std::string> id;
    int objects = -1;
    std::string log_error;
    std::optional<Rejection> rejected;
    double queue_ms = -1;
    double wait_budget_seconds = 0;           // for a detection: ServerCore::wait_budget_seconds
    MemoryBudget::Reservation body_memory;    // the request body, from its header to the answer
    MemoryBudget::Reservation answer_memory;  // a detection answer, until written
  };

  void begin_request();
  void on_idle_read(boost::beast::error_code ec, std::size_t bytes);
  void read_header();
  void parse_header();
  void on_header(boost::beast::error_code ec);
  bool reserve_body();
  void read_body();
  void on_body(boost::beast::error_code ec);
  void on_read_error(boost::beast::error_code ec);
  void dispatch();
  void enqueue_detection(std::string body);
  void reject(Rejection reason, std::string message, double retry_after_seconds);
  void watch_client();
  void on_watch(boost::beast::error_code ec, std::uint64_t generation);
  void on_detection_done(DetectOutcome outcome);
  void send(Response response);
  void on_write(boost::beast::error_code ec, bool keep_alive);
  void begin_accounting();
  void finish_request(Status status);
  void linger_close();
  void close_now();

  ServerCore& core_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  State state_ = State::kIdle;
  bool first_request_ = true;
  std::uint64_t session_id_ = 0;
  Current current_;
  std::shared_ptr<std::atomic<bool>> cancelled_;
  bool watching_ = false;
  std::uint64_t watch_generation_ = 0;
  std::uint64_t ticket_ = 0;            // of the queued detection job, for WorkQueue::withdraw
  std::size_t header_bytes_ = 0;        // of the request being read, already parsed
  std::unique_ptr<Response> response_;  // alive during its async_write
  MemoryBudget::Reservation connection_memory_;
};

}  // namespace clouddetect::http
