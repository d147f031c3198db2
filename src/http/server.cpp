#include "http/server.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <thread>

#include "api/json_codec.h"
#include "http/server_core.h"
#include "http/session.h"

namespace clouddetect::http {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
// What one connection holds beyond a header up to the limit: its read buffer, parser and session.
constexpr std::int64_t kConnectionOverheadBytes = 16 * 1024;
}  // namespace

Status status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return Status::bad_request;
    case ErrorCode::kNotFound:
      return Status::not_found;
    case ErrorCode::kPayloadTooLarge:
      return Status::payload_too_large;
    case ErrorCode::kUnsupportedMediaType:
      return Status::unsupported_media_type;
    case ErrorCode::kUnprocessable:
      return Status::unprocessable_entity;
    case ErrorCode::kUnavailable:
      return Status::service_unavailable;
    case ErrorCode::kInternal:
      return Status::internal_server_error;
  }
  return Status::internal_server_error;
}

InstanceIdentity InstanceIdentity::from_environment() {
  InstanceIdentity identity;
  if (const char* pod = std::getenv("POD_NAME")) identity.pod = pod;
  if (const char* node = std::getenv("NODE_NAME")) identity.node = node;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0) identity.host = host;
  return identity;
}

class Server::Impl {
 public:
  Impl(ServerOptions options, DetectHandler handler)
      : options_(std::move(options)),
        core_(options_, std::move(handler)),
        ioc_(options_.io_threads < 1 ? 1 : options_.io_threads),
        strand_(asio::make_strand(ioc_)),
        acceptor_(strand_),
        signals_(strand_),
        drain_timer_(strand_),
        retry_timer_(strand_) {
    core_.on_session_removed = [this] {
      if (core_.stopping) asio::post(strand_, [this] { check_done(); });
    };
    too_many_connections_ = refusal("overloaded: too many connections");
    no_memory_for_connection_ = refusal("overloaded: not enough memory for another connection now");
  }

  unsigned short bind();
  void run();
  void begin_shutdown();
  void post_shutdown() {
    asio::post(strand_, [this] { begin_shutdown(); });
  }

  ServerOptions options_;
  ServerCore core_;

 private:
  void run_io();
  void do_accept();
  void on_accept(boost::system::error_code ec, tcp::socket socket);
  void admit(tcp::socket socket);
  void raise_fd_limit();
  std::string refusal(std::string_view message) const;
  void refuse(tcp::socket socket, const std::string& answer);
  void stop_accepting();
  void check_done();

  asio::io_context ioc_;
  asio::strand<asio::io_context::executor_type> strand_;  // acceptor, signals, timers, lifecycle
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  asio::steady_timer drain_timer_;
  asio::steady_timer retry_timer_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::string too_many_connections_;
  std::string no_memory_for_connection_;
  bool ran_ = false;
};

unsigned short Server::Impl::bind() {
  if (acceptor_.is_open()) return acceptor_.local_endpoint().port();
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(options_.host, ec);
  if (ec) {  // a host name: resolve it
    tcp::resolver resolver(ioc_);
    const auto results = resolver.resolve(options_.host, "", ec);
    if (ec || results.empty()) {
      throw Error(ErrorCode::kInvalidArgument, "cannot resolve host '" + options_.host + "'");
    }
    address = results.begin()->endpoint().address();
  }
  const tcp::endpoint endpoint(address, options_.port);
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    throw Error(ErrorCode::kUnavailable, "cannot listen on " + where + ": " + ec.message());
  }
  return acceptor_.local_endpoint().port();
}

void Server::Impl::run() {
  if (ran_) throw Error(ErrorCode::kInternal, "http::Server::run called twice");
  ran_ = true;
  const unsigned short port = bind();
  raise_fd_limit();

  work_.emplace(ioc_.get_executor());
  core_.queue.start();
  if (options_.handle_signals) {
    signals_.add(SIGTERM);
    signals_.add(SIGINT);
    signals_.async_wait([this](boost::system::error_code ec, int signal_number) {
      if (ec) return;
      core_.log.info("received signal " + std::to_string(signal_number) + ", shutting down");
      begin_shutdown();
    });
  }
  asio::post(strand_, [this] { do_accept(); });
  core_.log.info("listening on " + options_.host + ":" + std::to_string(port) +
                 " (io_threads=" + std::to_string(options_.io_threads) +
                 ", workers=" + std::to_string(options_.workers) + ", queue=" + std::to_string(options_.max_queue) +
                 ", max_wait=" + std::to_string(options_.max_wait.count()) + "ms)");

  std::vector<std::thread> threads;
  for (int i = 1; i < options_.io_threads; ++i) threads.emplace_back([this] { run_io(); });
  run_io();
  for (std::thread& t : threads) t.join();
  core_.queue.stop_and_join();
  core_.log.info("stopped");
}

// Each connection is a file descriptor: a soft RLIMIT_NOFILE of 1024 (a common default) would
// make accept() fail long before max_connections. Raise the soft limit as far as needed and
// allowed (the hard limit), and say so when even that is too low.
void Server::Impl::raise_fd_limit() {
  constexpr rlim_t kSpare = 64;  // the listener, model files, logs, ...
  const rlim_t wanted = static_cast<rlim_t>(options_.max_connections) + kSpare;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted) return;
  const rlim_t before = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
  if (limit.rlim_cur > before && setrlimit(RLIMIT_NOFILE, &limit) != 0) limit.rlim_cur = before;
  if (limit.rlim_cur < wanted) {
    core_.log.warn("open files limit is " + std::to_string(limit.rlim_cur) + " (hard " +
                   std::to_string(limit.rlim_max) + "): fewer than --max-connections=" +
                   std::to_string(options_.max_connections) + " connections fit; raise ulimit -n");
  } else if (limit.rlim_cur != before) {
    core_.log.info("raised the open files limit from " + std::to_string(before) + " to " +
                   std::to_string(limit.rlim_cur));
  }
}

void Server::Impl::run_io() {
  for (;;) {
    try {
      ioc_.run();
      return;
    } catch (const std::exception& e) {
      core_.log.error(std::string("unexpected exception in an I/O handler: ") + e.what());
    }
  }
}

void Server::Impl::do_accept() {
  if (core_.stopping || !acceptor_.is_open()) return;
  acceptor_.async_accept(asio::make_strand(ioc_),
                         asio::bind_executor(strand_, [this](boost::system::error_code ec, tcp::socket socket) {
                           on_accept(ec, std::move(socket));
                         }));
}

void Server::Impl::on_accept(boost::system::error_code ec, tcp::socket socket) {
  if (ec) {
    if (ec == asio::error::operation_aborted || core_.stopping) return;
    // E.g. out of file descriptors: try again a little later instead of spinning.
    core_.log.error("accept failed: " + ec.message());
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([this](boost::system::error_code timer_ec) {
      if (!timer_ec) do_accept();
    });
    return;
  }
  admit(std::move(socket));
  do_accept();
}

void Server::Impl::admit(tcp::socket socket) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  MemoryBudget::Reservation memory = core_.memory.reservation(MemoryBudget::Use::kWaiting);
  if (core_.connections >= options_.max_connections) {
    core_.metrics.count_rejected("max_connections");
    refuse(std::move(socket), too_many_connections_);
  } else if (!memory.try_grow(kConnectionOverheadBytes + static_cast<std::int64_t>(options_.max_header_bytes))) {
    core_.count_rejection(Rejection::kMemory);
    refuse(std::move(socket), no_memory_for_connection_);
  } else {
    ++core_.connections;
    std::make_shared<Session>(core_, std::move(socket), std::move(memory))->start();
  }
}

// The whole answer to a connection refused at accept: 503, then close.
std::string Server::Impl::refusal(std::string_view message) const {
  const Response response = core_.error_response(status_for(ErrorCode::kUnavailable), std::nullopt, message);
  std::string text =
      "HTTP/1.1 " + std::to_string(response.result_int()) + " " + std::string(response.reason()) + "\r\n";
  for (const auto& field : response)
    text += std::string(field.name_string()) + ": " + std::string(field.value()) + "\r\n";
  text += "Connection: close\r\nX-Served-By: " + core_.served_by() +
          "\r\nContent-Length: " + std::to_string(response.body().size()) + "\r\n\r\n" + response.body();
  return text;
}

// Answer 503 and close, without reading the request.
void Server::Impl::refuse(tcp::socket socket, const std::string& answer) {
  auto client = std::make_shared<tcp::socket>(std::move(socket));
  asio::async_write(*client, asio::buffer(answer), [client](boost::system::error_code, std::size_t) {
    boost::system::error_code ignored;
    client->shutdown(tcp::socket::shutdown_both, ignored);
    client->close(ignored);
  });
}

void Server::Impl::begin_shutdown() {
  if (core_.shutting_down.exchange(true)) return;
  core_.log.info("shutdown: not ready; accepting for " + std::to_string(options_.drain_seconds.count()) + " s more");
  drain_timer_.expires_after(options_.drain_seconds);
  drain_timer_.async_wait([this](boost::system::error_code) { stop_accepting(); });
}

void Server::Impl::stop_accepting() {
  if (core_.stopping.exchange(true)) return;
  boost::system::error_code ignored;
  // Connections the kernel has completed but we have not accepted yet would be reset by close():
  // their clients already sent (or are sending) a request. Take them in and serve them.
  acceptor_.cancel(ignored);
  acceptor_.non_blocking(true, ignored);
  for (int i = 0; i < 4096 && acceptor_.is_open(); ++i) {
    boost::system::error_code ec;
    tcp::socket socket(asio::make_strand(ioc_));
    acceptor_.accept(socket, ec);
    if (ec) break;  // would_block: the backlog is empty
    admit(std::move(socket));
  }
  acceptor_.close(ignored);
  retry_timer_.cancel();
  core_.log.info("shutdown: stopped accepting; finishing " + std::to_string(core_.connections.load()) +
                 " connection(s)");
  for (const std::shared_ptr<Session>& session : core_.sessions()) session->close_if_idle();
  check_done();
}

void Server::Impl::check_done() {
  if (!core_.stopping || core_.connections != 0 || !work_) return;
  signals_.cancel();
  drain_timer_.cancel();
  retry_timer_.cancel();
  work_.reset();  // run() returns once the last handler is done
}

Server::Server(ServerOptions options, DetectHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Server::~Server() = default;

void Server::add_static_route(const std::string& path, const std::string& content_type, std::string body) {
  impl_->core_.add_static_route(path, content_type, std::move(body));
}

unsigned short Server::bind() { return impl_->bind(); }

void Server::run() { impl_->run(); }

void Server::set_ready(bool ready) { impl_->core_.ready = ready; }

std::int64_t Server::request_memory_budget() const { return impl_->core_.memory.capacity(); }

void Server::log_event(std::string_view message, const std::vector<std::pair<std::string, std::string>>& fields,
                       std::string_view json_members) {
  impl_->core_.log.info(message, fields, json_members);
}

void Server::shutdown() { impl_->post_shutdown(); }

}  // namespace clouddetect::http
