#include "http/work_queue.h"

namespace clouddetect::http {

WorkQueue::WorkQueue(std::size_t capacity, int workers) : capacity_(capacity), workers_(workers < 1 ? 1 : workers) {}

WorkQueue::~WorkQueue() { stop_and_join(); }

void WorkQueue::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!threads_.empty()) return;
  stopping_ = false;
  for (int i = 0; i < workers_; ++i) threads_.emplace_back([this, i] { work(i); });
}

bool WorkQueue::try_push(Job job, std::uint64_t* ticket) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || jobs_.size() + busy_ >= capacity_ + static_cast<std::size_t>(workers_)) return false;
    const std::uint64_t id = ++next_ticket_;
    jobs_.emplace_back(id, std::move(job));
    if (ticket != nullptr) *ticket = id;
  }
  ready_.notify_one();
  return true;
}

bool WorkQueue::withdraw(std::uint64_t ticket) {
  Job removed;  // destroyed after the lock is released: it may own the last reference to a session
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
      if (it->first == ticket) {
        removed = std::move(it->second);
        jobs_.erase(it);
        return true;
      }
    }
  }
  return false;
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
    {
      std::unique_lock<std::mutex> lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping and drained
      job = std::move(jobs_.front().second);
      jobs_.pop_front();
      ++busy_;
    }
    Completion completion = job(worker_index);
    job = nullptr;  // release captured state before counting the job as done
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --busy_;
    }
    if (completion) completion();
  }
}

}  // namespace clouddetect::http
