#include "http/work_queue.h"

#include <algorithm>
#include <limits>

namespace clouddetect::http {

WorkQueue::WorkQueue(std::size_t max_waiting, int workers)
    : max_waiting_(max_waiting), workers_(workers < 1 ? 1 : workers) {}

WorkQueue::~WorkQueue() { stop_and_join(); }

void WorkQueue::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!threads_.empty()) return;
  stopping_ = false;
  for (int i = 0; i < workers_; ++i) threads_.emplace_back([this, i] { work(i); });
}

// Jobs ahead of a new one: every waiting and running job. It starts once all but workers - 1 of
// them are done; a running job counts whole (it may have just started).
double WorkQueue::expected_wait_locked(double service_seconds) const {
  const std::size_t ahead = jobs_.size() + busy_;
  const auto workers = static_cast<std::size_t>(workers_);
  if (ahead < workers) return 0;
  return static_cast<double>(ahead - workers + 1) * service_seconds / static_cast<double>(workers);
}

double WorkQueue::expected_wait(double service_seconds) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return expected_wait_locked(service_seconds);
}

WorkQueue::Admission WorkQueue::try_push(Job job, double service_seconds, double max_wait_seconds,
                                         std::uint64_t* ticket) {
  Admission admission;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    admission.expected_wait_seconds = expected_wait_locked(service_seconds);
    const double per_job = service_seconds / static_cast<double>(workers_);
    // Waiting jobs beyond the idle workers: with every worker busy, at most max_waiting_ of them.
    const std::size_t in_flight = jobs_.size() + busy_;
    if (stopping_) {
      admission.verdict = Verdict::kStopping;
    } else if (in_flight >= max_waiting_ + static_cast<std::size_t>(workers_)) {
      admission.verdict = Verdict::kQueueFull;
      admission.retry_after_seconds =
          static_cast<double>(in_flight + 1 - max_waiting_ - static_cast<std::size_t>(workers_)) * per_job;
    } else if (admission.expected_wait_seconds > max_wait_seconds) {
      admission.verdict = Verdict::kWaitTooLong;
      admission.retry_after_seconds = admission.expected_wait_seconds - max_wait_seconds;
    } else {
      const std::uint64_t id = ++next_ticket_;
      jobs_.push_back(Waiting{id, Clock::now(), std::move(job)});
      if (ticket != nullptr) *ticket = id;
    }
  }
  if (admission.verdict == Verdict::kAdmitted) ready_.notify_one();
  return admission;
}

bool WorkQueue::try_push(Job job, std::uint64_t* ticket) {
  return try_push(std::move(job), 0, std::numeric_limits<double>::infinity(), ticket).verdict == Verdict::kAdmitted;
}

bool WorkQueue::withdraw(std::uint64_t ticket) {
  Job removed;  // destroyed after the lock is released: it may own the last reference to a session
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = std::find_if(jobs_.begin(), jobs_.end(), [&](const Waiting& w) { return w.ticket == ticket; });
  if (it == jobs_.end()) return false;
  removed = std::move(it->job);
  jobs_.erase(it);
  return true;
}

std::size_t WorkQueue::depth() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return jobs_.size();
}

std::size_t WorkQueue::busy() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return busy_;
}

void WorkQueue::stop_and_join() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    threads.swap(threads_);
  }
  ready_.notify_all();
  for (std::thread& t : threads) t.join();
}

void WorkQueue::work(int worker_index) {
  for (;;) {
    Job job;
    Clock::duration waited{};
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping and drained
      job = std::move(jobs_.front().job);
      waited = Clock::now() - jobs_.front().since;
      jobs_.pop_front();
      ++busy_;
    }
    Completion completion = job(worker_index, waited);
    job = nullptr;  // release captured state before counting the job as done
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --busy_;
    }
    if (completion) completion();
  }
}

}  // namespace clouddetect::http
