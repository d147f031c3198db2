#include "http/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>

namespace clouddetect::http {
namespace {

TEST(WorkQueue, RunsJobsOnWorkersWithTheirIndex) {
  WorkQueue queue(100, 3);
  queue.start();
  std::mutex mutex;
  std::set<int> indexes;
  std::atomic<int> done{0};
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(queue.try_push([&](int worker) {
      std::lock_guard<std::mutex> lock(mutex);
      indexes.insert(worker);
      ++done;
      return WorkQueue::Completion{};
    }));
  }
  queue.stop_and_join();  // drains first
  EXPECT_EQ(done, 50);
  for (int index : indexes) EXPECT_TRUE(index >= 0 && index < 3) << index;
}

TEST(WorkQueue, RefusesWhenFullWithoutBlocking) {
  WorkQueue queue(2, 1);
  queue.start();
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(queue.try_push([&, opened](int) {
    started.set_value();
    opened.wait();
    return WorkQueue::Completion{};
  }));
  started.get_future().wait();  // the worker is busy; the queue is empty
  EXPECT_EQ(queue.busy(), 1u);
  EXPECT_TRUE(queue.try_push([opened](int) {
    opened.wait();
    return WorkQueue::Completion{};
  }));
  EXPECT_TRUE(queue.try_push([opened](int) {
    opened.wait();
    return WorkQueue::Completion{};
  }));
  EXPECT_EQ(queue.depth(), 2u);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(queue.try_push([](int) { return WorkQueue::Completion{}; }));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(50));
  gate.set_value();
  queue.stop_and_join();
  EXPECT_EQ(queue.depth(), 0u);
  EXPECT_FALSE(queue.try_push([](int) { return WorkQueue::Completion{}; }));  // stopped
}

TEST(WorkQueue, WithdrawFreesTheSlotAndNeverRunsTheJob) {
  WorkQueue queue(1, 1);
  queue.start();
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::promise<void> started;
  std::uint64_t running_ticket = 0;
  ASSERT_TRUE(queue.try_push(
      [&, opened](int) {
        started.set_value();
        opened.wait();
        return WorkQueue::Completion{};
      },
      &running_ticket));
  started.get_future().wait();
  std::atomic<bool> ran{false};
  auto owned = std::make_shared<int>(7);
  std::uint64_t ticket = 0;
  ASSERT_TRUE(queue.try_push(
      [&ran, owned](int) {
        ran = true;
        return WorkQueue::Completion{};
      },
      &ticket));
  EXPECT_FALSE(queue.try_push([](int) { return WorkQueue::Completion{}; }));  // full
  EXPECT_EQ(owned.use_count(), 2);
  EXPECT_TRUE(queue.withdraw(ticket));
  EXPECT_EQ(owned.use_count(), 1);  // the job and what it captured are gone
  EXPECT_EQ(queue.depth(), 0u);
  EXPECT_FALSE(queue.withdraw(ticket));          // only once
  EXPECT_FALSE(queue.withdraw(running_ticket));  // a running job cannot be withdrawn
  std::atomic<bool> later{false};
  EXPECT_TRUE(queue.try_push([&later](int) {
    later = true;
    return WorkQueue::Completion{};
  }));  // the slot is free again
  gate.set_value();
  queue.stop_and_join();
  EXPECT_FALSE(ran);
  EXPECT_TRUE(later);
}

// With one worker and one waiting job (full), the running job's completion (its answer going out)
// runs after its slot is free: a closed-loop client that asks again at once is not refused.
// Before, the slot was freed after the answer was posted, and users = workers + queue saw 503s.
TEST(WorkQueue, SlotIsFreeWhenTheCompletionRuns) {
  WorkQueue queue(1, 1);
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::promise<bool> next_accepted;
  ASSERT_TRUE(queue.try_push([&, opened](int) {
    opened.wait();
    return WorkQueue::Completion(
        [&] { next_accepted.set_value(queue.try_push([](int) { return WorkQueue::Completion{}; })); });
  }));
  ASSERT_TRUE(queue.try_push([](int) { return WorkQueue::Completion{}; }));   // waits
  EXPECT_FALSE(queue.try_push([](int) { return WorkQueue::Completion{}; }));  // full: 1 running + 1 waiting
  queue.start();
  gate.set_value();
  EXPECT_TRUE(next_accepted.get_future().get());
  queue.stop_and_join();
}

}  // namespace
}  // namespace clouddetect::http
