// A bounded FIFO of jobs served by a fixed set of worker threads.
// Threading: try_push() and depth() from any thread; start() and stop_and_join() from one thread.
#pragma once

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
  // What a job hands back to run once its slot is free again: typically posting its answer. A
  // client that sends its next request the moment it has the answer then always finds room.
  using Completion = std::function<void()>;
  using Job = std::function<Completion(int worker_index)>;  // must not throw; may return {}

  WorkQueue(std::size_t capacity, int workers);
  ~WorkQueue();  // stop_and_join()

  void start();
  // Queues `job` unless `capacity` + `workers` jobs are in flight (waiting or running: with every
  // worker busy, at most `capacity` wait) or the queue is stopping; returns whether it was queued.
  // Never blocks on a full queue. `ticket`, if given, receives a number that withdraw() accepts.
  bool try_push(Job job, std::uint64_t* ticket = nullptr);
  // Removes the job of `ticket` if it is still waiting (its slot is free at once, the job is
  // destroyed without running); false if a worker already took it or it never was queued.
  bool withdraw(std::uint64_t ticket);
  std::size_t depth() const;  // jobs waiting for a worker
  std::size_t busy() const;   // jobs running
  // Runs every queued job, then joins the workers. Idempotent.
  void stop_and_join();

 private:
  void work(int worker_index);

  const std::size_t capacity_;
  const int workers_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::pair<std::uint64_t, Job>> jobs_;  // (ticket, job)
  std::uint64_t next_ticket_ = 0;
  std::size_t busy_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace clouddetect::http
