#include "http/session.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

namespace clouddetect::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::chrono::seconds kStopGrace{1};
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool is_http_parse_error(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
}

}  // namespace

Session::Session(ServerCore& core, tcp::socket socket, MemoryBudget::Reservation memory)
    : core_(core), stream_(std::move(socket)), connection_memory_(std::move(memory)) {
  // Only the peek in on_watch() is synchronous; it must never block.
  beast::error_code ec;
  stream_.socket().non_blocking(true, ec);
}

Session::~Session() {
  if (current_.active) finish_request(kClientClosedRequest);
  core_.remove_session(session_id_);
}

void Session::start() {
  session_id_ = core_.add_session(weak_from_this());
  asio::post(stream_.get_executor(), [self = shared_from_this()] { self->begin_request(); });
}

void Session::close_if_idle() {
  asio::post(stream_.get_executor(), [self = shared_from_this()] {
    if (self->state_ != State::kIdle) return;
    if (!self->first_request_) {
      self->stream_.cancel();
      return;
    }
    // Accepted, but its first request has not arrived yet: the client is probably sending it
    // right now (it cannot know we are stopping). Give it a short grace, then close.
    auto grace = std::make_shared<asio::steady_timer>(self->stream_.get_executor());
    grace->expires_after(std::min<std::chrono::steady_clock::duration>(kStopGrace, self->core_.options.header_timeout));
    grace->async_wait([self, grace](beast::error_code ec) {
      if (!ec && self->state_ == State::kIdle) self->stream_.cancel();
    });
  });
}

void Session::begin_request() {
  current_ = Current{};
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(core_.options.max_header_bytes));
  parser_->body_limit(static_cast<std::uint64_t>(core_.options.max_body_bytes));
  if (buffer_.size() > 0) {  // a pipelined request is already here
    read_header();
    return;
  }
  state_ = State::kIdle;
  // Checked after state_ = kIdle: see close_if_idle(). A connection that has not sent its first
  // request yet (accepted just before the listener closed) may still send it.
  if (core_.stopping && !first_request_) {
    close_now();
    return;
  }
  stream_.expires_after(first_request_ ? core_.options.header_timeout : core_.options.keepalive_idle_timeout);
  stream_.async_read_some(buffer_.prepare(kReadChunk),
                          beast::bind_front_handler(&Session::on_idle_read, shared_from_this()));
}

void Session::on_idle_read(beast::error_code ec, std::size_t bytes) {
  if (ec) {  // closed by the client, idle timeout, or shutdown
    close_now();
    return;
  }
  buffer_.commit(bytes);
  read_header();
}

void Session::read_header() {
  state_ = State::kReading;
  current_.start = std::chrono::steady_clock::now();
  header_bytes_ = 0;
  stream_.expires_after(core_.options.header_timeout);
  parse_header();
}

// Feeds the parser by hand instead of bhttp::async_read_header: Beast 1.81 applies header_limit to
// each parse call, not to the whole header (fields already parsed are consumed and no longer
// count), so many small header fields could grow a request's header without bound.
void Session::parse_header() {
  beast::error_code ec;
  while (buffer_.size() > 0 && !parser_->is_header_done()) {
    const std::size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    header_bytes_ += used;
    if (ec == bhttp::error::need_more) {
      ec = {};
      break;
    }
    if (ec) {
      on_header(ec);
      return;
    }
  }
  if (parser_->is_header_done()) {
    on_header({});
    return;
  }
  if (header_bytes_ + buffer_.size() >= core_.options.max_header_bytes) {
    on_header(bhttp::error::header_limit);
    return;
  }
  stream_.async_read_some(buffer_.prepare(kReadChunk),
                          [self = shared_from_this()](beast::error_code read_ec, std::size_t bytes) {
                            if (read_ec) {
                              if (read_ec == asio::error::eof) {
                                read_ec = self->header_bytes_ + self->buffer_.size() > 0 ? bhttp::error::partial_message
                                                                                         : bhttp::error::end_of_stream;
                              }
                              self->on_header(read_ec);
                              return;
                            }
                            self->buffer_.commit(bytes);
                            self->parse_header();
                          });
}

void Session::on_header(beast::error_code ec) {
  if (ec) {
    on_read_error(ec);
    return;
  }
  const Request& request = parser_->get();
  current_.method = std::string(request.method_string());
  current_.target = std::string(request.target());
  current_.version = request.version();
  current_.keep_alive = request.keep_alive();
  current_.head = request.method() == bhttp::verb::head;
  begin_accounting();

  const std::string_view target = request.target();
  current_.route = core_.find_route(target.substr(0, target.find('?')));
  current_.cors_origin = core_.cors_origin_for(request[bhttp::field::origin]);
  if (std::optional<Response> early = core_.precheck(request, current_.route, current_.cors_origin)) {
    if (early->result() == Status::unauthorized) core_.metrics.count_rejected("unauthorized");
    if (!parser_->is_done()) current_.must_close = true;  // its body stays unread
    send(std::move(*early));
    return;
  }
  if (!reserve_body()) return;
  current_.wait_budget_seconds = core_.wait_budget_seconds(request);
  const std::string_view expect = request[bhttp::field::expect];
  if (current_.version >= 11 && beast::iequals(expect, "100-continue")) {
    asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                      [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
                        if (write_ec) {
                          self->close_now();
                        } else {
                          self->read_body();
                        }
                      });
    return;
  }
  read_body();
}

// Reserves the body's bytes before reading it (Content-Length, or the body limit when chunked): a
// body that does not fit the memory budget is refused from its header, never read whole.
bool Session::reserve_body() {
  if (parser_->is_done()) return true;  // no body
  const std::uint64_t declared = parser_->content_length().value_or(core_.options.max_body_bytes);
  current_.body_memory = core_.memory.reservation(MemoryBudget::Use::kWaiting);
  if (current_.body_memory.try_grow(static_cast<std::int64_t>(declared))) return true;
  current_.must_close = true;  // its body stays unread
  reject(Rejection::kMemory,
         "overloaded: a body of " + std::to_string(declared) + " bytes does not fit in memory now, retry later",
         core_.queue.expected_wait(core_.service_seconds()));
  return false;
}

void Session::reject(Rejection reason, std::string message, double retry_after_seconds) {
  core_.count_rejection(reason);
  current_.rejected = reason;
  current_.log_error = message;
  send(core_.error_response(status_for(ErrorCode::kUnavailable), std::nullopt, message, retry_after_seconds));
}

void Session::read_body() {
  stream_.expires_after(core_.options.body_timeout);
  bhttp::async_read(stream_, buffer_, *parser_,
                    [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
}

void Session::on_body(beast::error_code ec) {
  if (ec) {
    on_read_error(ec);
    return;
  }
  dispatch();
}

void Session::on_read_error(beast::error_code ec) {
  current_.must_close = true;
  if (ec == bhttp::error::body_limit) {
    core_.metrics.count_rejected("body_too_large");
    send(
        core_.error_response(status_for(ErrorCode::kPayloadTooLarge), std::nullopt,
                             "request body is larger than " + std::to_string(core_.options.max_body_bytes) + " bytes"));
  } else if (ec == bhttp::error::header_limit) {
    core_.metrics.count_rejected("header_too_large");
    send(core_.error_response(
        Status::request_header_fields_too_large, std::nullopt,
        "request header is larger than " + std::to_string(core_.options.max_header_bytes) + " bytes"));
  } else if (is_http_parse_error(ec)) {
    send(core_.error_response(Status::bad_request, std::nullopt, "malformed HTTP request: " + ec.message()));
  } else {
    // The client went away or was too slow (beast::error::timeout): nothing to answer.
    if (current_.active) {
      current_.log_error = ec.message();
      finish_request(ec == beast::error::timeout ? Status::request_timeout : kClientClosedRequest);
    }
    close_now();
  }
}

void Session::dispatch() {
  Request request = parser_->release();
  if (current_.route->on_worker) {
    enqueue_detection(std::move(request.body()));
    return;
  }
  send(current_.route->answer());
}

void Session::enqueue_detection(std::string body) {
  cancelled_ = std::make_shared<std::atomic<bool>>(false);
  auto job = [self = shared_from_this(), body = std::make_shared<std::string>(std::move(body)), cancelled = cancelled_,
              budget = current_.wait_budget_seconds](int worker_index, WorkQueue::Clock::duration waited) mutable {
    auto outcome = std::make_shared<DetectOutcome>(self->core_.detect(*body, worker_index, *cancelled, waited, budget));
    body.reset();
    // Posted only once the queue slot is free (see WorkQueue::Completion).
    return WorkQueue::Completion([session = std::move(self), outcome]() mutable {
      auto executor = session->stream_.get_executor();
      asio::post(executor, [session = std::move(session), outcome]() mutable {
        session->on_detection_done(std::move(*outcome));
      });
    });
  };
  const double service = core_.service_seconds();
  const WorkQueue::Admission admission =
      core_.queue.try_push(std::move(job), service, current_.wait_budget_seconds, &ticket_);
  switch (admission.verdict) {
    case WorkQueue::Verdict::kAdmitted:
      break;
    case WorkQueue::Verdict::kWaitTooLong:
      reject(Rejection::kWait,
             "overloaded: the expected wait (" + std::to_string(admission.expected_wait_seconds) +
                 " s) is over its budget (" + std::to_string(current_.wait_budget_seconds) + " s: " + kWaitBudgetRule +
                 "), retry later",
             admission.retry_after_seconds);
      return;
    case WorkQueue::Verdict::kQueueFull:
      reject(Rejection::kQueue,
             "overloaded: the queue is full (--queue " + std::to_string(core_.options.max_queue) + "), retry later",
             admission.retry_after_seconds);
      return;
    case WorkQueue::Verdict::kStopping:
      reject(Rejection::kShutdown, "shutting down, retry on another instance", 1);
      return;
  }
  state_ = State::kProcessing;
  stream_.expires_never();
  watch_client();
}

void Session::watch_client() {
  watching_ = true;
  const std::uint64_t generation = ++watch_generation_;
  stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this(), generation](beast::error_code ec) {
    self->on_watch(ec, generation);
  });
}

void Session::on_watch(beast::error_code ec, std::uint64_t generation) {
  if (!watching_ || generation != watch_generation_) return;  // cancelled by on_detection_done
  watching_ = false;
  if (ec) return;
  tcp::socket& socket = stream_.socket();
  if (socket.available(ec) > 0 && !ec) return;  // a pipelined request: leave it for later
  char byte;
  const std::size_t n = socket.receive(asio::buffer(&byte, 1), tcp::socket::message_peek, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    watch_client();
  } else if (ec || n == 0) {  // end of stream or reset: nobody waits for the answer
    cancelled_->store(true);
    if (core_.queue.withdraw(ticket_)) {  // still waiting: free its slot now, never run it
      core_.metrics.count_rejected("client_gone");
      current_.log_error = "client closed the connection while queued";
      finish_request(kClientClosedRequest);
      close_now();
    }  // else a worker has it: detect() skips it or on_detection_done() discards the answer
  }
}

void Session::on_detection_done(DetectOutcome outcome) {
  if (watching_) {
    watching_ = false;
    beast::error_code ec;
    stream_.socket().cancel(ec);
  }
  current_.id = std::move(outcome.id);
  current_.objects = outcome.objects;
  current_.log_error = std::move(outcome.log_error);
  current_.rejected = outcome.rejected;
  current_.queue_ms = outcome.queue_ms;
  current_.answer_memory = std::move(outcome.memory);
  if (outcome.skipped || cancelled_->load()) {
    if (current_.log_error.empty()) current_.log_error = "client closed the connection";
    finish_request(kClientClosedRequest);
    close_now();
    return;
  }
  if (outcome.status == Status::ok) {
    send(core_.make_response(Status::ok, "application/json", std::move(outcome.body)));
  } else {
    send(core_.error_response(outcome.status, std::move(outcome.body), outcome.retry_after_seconds));
  }
}

void Session::send(Response response) {
  state_ = State::kWriting;
  begin_accounting();
  response.version(current_.version);
  response.set("X-Served-By", core_.served_by());
  if (!current_.cors_origin.empty()) {
    response.set(bhttp::field::access_control_allow_origin, current_.cors_origin);
    response.set(bhttp::field::vary, "Origin");
  }
  if (current_.route == nullptr || !current_.route->cacheable) {
    response.set(bhttp::field::cache_control, "no-store");
  }
  // From SIGTERM on (drain included) every answer closes its connection, so that keep-alive
  // clients reconnect (to another pod) instead of sending on a connection about to be closed.
  const bool keep_alive = current_.keep_alive && !current_.must_close && !core_.shutting_down;
  response.keep_alive(keep_alive);
  response.prepare_payload();
  if (current_.head) response.body().clear();  // Content-Length stays that of the GET answer
  response_ = std::make_unique<Response>(std::move(response));
  stream_.expires_after(core_.options.body_timeout);
  bhttp::async_write(stream_, *response_, [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
    self->on_write(ec, keep_alive);
  });
}

void Session::on_write(beast::error_code ec, bool keep_alive) {
  const Status status = response_->result();
  response_.reset();
  if (ec) current_.log_error = "response not delivered: " + ec.message();
  finish_request(status);
  if (ec) {
    close_now();
  } else if (!keep_alive) {
    linger_close();
  } else {
    first_request_ = false;
    begin_request();
  }
}

void Session::begin_accounting() {
  if (current_.active) return;
  current_.active = true;
  if (current_.start == std::chrono::steady_clock::time_point{}) {
    current_.start = std::chrono::steady_clock::now();
  }
  ++core_.in_flight;
}

void Session::finish_request(Status status) {
  if (!current_.active) return;
  current_.active = false;
  --core_.in_flight;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - current_.start).count();
  const int code = static_cast<int>(status);
  core_.metrics.count_request(current_.route ? current_.route->path : ServerCore::kOtherRoute, code, seconds);
  RequestLogEntry entry;
  entry.method = current_.method;
  entry.path = current_.target;
  entry.status = code;
  entry.duration_ms = seconds * 1000.0;
  entry.id = current_.id;
  entry.objects = current_.objects;
  entry.error = current_.log_error;
  entry.queue_ms = current_.queue_ms;
  if (current_.rejected) entry.rejected = rejection_label(*current_.rejected);
  core_.log.request(entry);
  current_.body_memory.reset();
  current_.answer_memory.reset();
}

// Half-closes, then reads and discards what the client still sends (for a little while), so
// that closing does not reset the connection before the client has read our answer.
void Session::linger_close() {
  state_ = State::kClosing;
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) {
    close_now();
    return;
  }
  buffer_.clear();
  stream_.expires_after(kLingerTime);
  struct Drain {
    std::shared_ptr<Session> self;
    void operator()(beast::error_code read_ec, std::size_t) {
      if (read_ec) {
        self->close_now();
        return;
      }
      Session& s = *self;
      s.stream_.async_read_some(s.buffer_.prepare(kReadChunk), std::move(*this));
    }
  };
  stream_.async_read_some(buffer_.prepare(kReadChunk), Drain{shared_from_this()});
}

void Session::close_now() {
  state_ = State::kClosing;
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
}

}  // namespace clouddetect::http
