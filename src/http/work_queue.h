// A FIFO of jobs served by a fixed set of worker threads, admitting a job only when the wait it
// can expect fits a budget (and, optionally, when fewer than a fixed number wait).
// Threading: every method may be called from any thread; start() and stop_and_join() from one.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace clouddetect::http {

class WorkQueue {
 public:
  using Clock = std::chrono::steady_clock;
  // What a job hands back to run once its slot is free again: typically posting its answer. A
  // client that sends its next request the moment it has the answer then always finds room.
  using Completion = std::function<void()>;
  // `waited`: from try_push() until a worker took the job. Must not throw; may return {}.
  using Job = std::function<Completion(int worker_index, Clock::duration waited)>;

  enum class Verdict { kAdmitted, kQueueFull, kWaitTooLong, kStopping };
  struct Admission {
    Verdict verdict = Verdict::kAdmitted;
    double expected_wait_seconds = 0;  // what the job would wait (admitted or not)
    // Refused: after about this long the queue has room for it again.
    double retry_after_seconds = 0;
  };

  // At most `max_waiting` jobs wait while every worker is busy.
  WorkQueue(std::size_t max_waiting, int workers);
  ~WorkQueue();  // stop_and_join()

  void start();
  // Queues `job` when the wait it can expect (jobs ahead of it shared among the workers, each
  // taking `service_seconds`) is at most `max_wait_seconds`, fewer than `max_waiting` jobs wait
  // behind busy workers, and the queue is not stopping. Never blocks. `ticket`, if given,
  // receives a number that withdraw() accepts.
  Admission try_push(Job job, double service_seconds, double max_wait_seconds, std::uint64_t* ticket = nullptr);
  // try_push without a wait budget (tests, and callers that only want the count bound).
  bool try_push(Job job, std::uint64_t* ticket = nullptr);
  // Removes the job of `ticket` if it is still waiting (its slot is free at once, the job is
  // destroyed without running); false if a worker already took it or it never was queued.
  bool withdraw(std::uint64_t ticket);
  // The wait a job pushed now could expect, at `service_seconds` per job.
  double expected_wait(double service_seconds) const;
  std::size_t depth() const;  // jobs waiting for a worker
  std::size_t busy() const;   // jobs running
  // Runs every queued job, then joins the workers. Idempotent.
  void stop_and_join();

 private:
  struct Waiting {
    std::uint64_t ticket;
    Clock::time_point since;
    Job job;
  };
  double expected_wait_locked(double service_seconds) const;
  void work(int worker_index);

  const std::size_t max_waiting_;
  const int workers_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Waiting> jobs_;
  std::uint64_t next_ticket_ = 0;
  std::size_t busy_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace clouddetect::http
