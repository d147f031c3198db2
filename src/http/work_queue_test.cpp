#include "http/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <thread>

namespace clouddetect::http {
namespace {

TEST(WorkQueue, RunsJobsOnWorkersWithTheirIndex) {
  WorkQueue queue(100, 3);
  queue.start();
  std::mutex mutex;
  std::set<int> indexes;
  std::atomic<int> done{0};
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(queue.try_push([&](int worker, WorkQueue::Clock::duration) {
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
  ASSERT_TRUE(queue.try_push([&, opened](int, WorkQueue::Clock::duration) {
    started.set_value();
    opened.wait();
    return WorkQueue::Completion{};
  }));
  started.get_future().wait();  // the worker is busy; the queue is empty
  EXPECT_EQ(queue.busy(), 1u);
  EXPECT_TRUE(queue.try_push([opened](int, WorkQueue::Clock::duration) {
    opened.wait();
    return WorkQueue::Completion{};
  }));
  EXPECT_TRUE(queue.try_push([opened](int, WorkQueue::Clock::duration) {
    opened.wait();
    return WorkQueue::Completion{};
  }));
  EXPECT_EQ(queue.depth(), 2u);
  // Refused without waiting: a push that waited for a slot would never return while the gate is shut.
  EXPECT_FALSE(queue.try_push([](int, WorkQueue::Clock::duration) { return WorkQueue::Completion{}; }));
  gate.set_value();
  queue.stop_and_join();
  EXPECT_EQ(queue.depth(), 0u);
  EXPECT_FALSE(queue.try_push([](int, WorkQueue::Clock::duration) { return WorkQueue::Completion{}; }));  // stopped
}

TEST(WorkQueue, WithdrawFreesTheSlotAndNeverRunsTheJob) {
  WorkQueue queue(1, 1);
  queue.start();
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::promise<void> started;
  std::uint64_t running_ticket = 0;
  ASSERT_TRUE(queue.try_push(
      [&, opened](int, WorkQueue::Clock::duration) {
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
      [&ran, owned](int, WorkQueue::Clock::duration) {
        ran = true;
        return WorkQueue::Completion{};
      },
      &ticket));
  EXPECT_FALSE(queue.try_push([](int, WorkQueue::Clock::duration) { return WorkQueue::Completion{}; }));  // full
  EXPECT_EQ(owned.use_count(), 2);
  EXPECT_TRUE(queue.withdraw(ticket));
  EXPECT_EQ(owned.use_count(), 1);  // the job and what it captured are gone
  EXPECT_EQ(queue.depth(), 0u);
  EXPECT_FALSE(queue.withdraw(ticket));          // only once
  EXPECT_FALSE(queue.withdraw(running_ticket));  // a running job cannot be withdrawn
  std::atomic<bool> later{false};
  EXPECT_TRUE(queue.try_push([&later](int, WorkQueue::Clock::duration) {
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
  ASSERT_TRUE(queue.try_push([&, opened](int, WorkQueue::Clock::duration) {
    opened.wait();
    return WorkQueue::Completion([&] {
      next_accepted.set_value(queue.try_push([](int, WorkQueue::Clock::duration) { return WorkQueue::Completion{}; }));
    });
  }));
  ASSERT_TRUE(queue.try_push([](int, WorkQueue::Clock::duration) { return WorkQueue::Completion{}; }));  // waits
  EXPECT_FALSE(queue.try_push(
      [](int, WorkQueue::Clock::duration) { return WorkQueue::Completion{}; }));  // full: 1 running + 1 waiting
  queue.start();
  gate.set_value();
  EXPECT_TRUE(next_accepted.get_future().get());
  queue.stop_and_join();
}

WorkQueue::Job blocking_job(std::shared_future<void> opened, std::promise<void>* started = nullptr) {
  return [opened, started](int, WorkQueue::Clock::duration) {
    if (started != nullptr) started->set_value();
    opened.wait();
    return WorkQueue::Completion{};
  };
}

WorkQueue::Job noop_job() {
  return [](int, WorkQueue::Clock::duration) { return WorkQueue::Completion{}; };
}

// One worker, 1 s per job, a 2.5 s budget: the running job and two waiting ones are ahead of the
// fourth (3 s expected), which is refused with the time until it would fit (0.5 s).
TEST(WorkQueue, AdmitsByExpectedWait) {
  WorkQueue queue(100, 1);
  queue.start();
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::promise<void> started;
  EXPECT_EQ(queue.try_push(blocking_job(opened, &started), 1.0, 2.5).verdict, WorkQueue::Verdict::kAdmitted);
  started.get_future().wait();
  EXPECT_DOUBLE_EQ(queue.expected_wait(1.0), 1.0);
  for (double expected : {1.0, 2.0}) {
    const WorkQueue::Admission admitted = queue.try_push(blocking_job(opened), 1.0, 2.5);
    EXPECT_EQ(admitted.verdict, WorkQueue::Verdict::kAdmitted);
    EXPECT_DOUBLE_EQ(admitted.expected_wait_seconds, expected);
  }
  const WorkQueue::Admission refused = queue.try_push(noop_job(), 1.0, 2.5);
  EXPECT_EQ(refused.verdict, WorkQueue::Verdict::kWaitTooLong);
  EXPECT_DOUBLE_EQ(refused.expected_wait_seconds, 3.0);
  EXPECT_DOUBLE_EQ(refused.retry_after_seconds, 0.5);
  EXPECT_EQ(queue.depth(), 2u);
  // A faster estimate admits more: the same queue at 0.5 s per job.
  EXPECT_EQ(queue.try_push(blocking_job(opened), 0.5, 2.5).verdict, WorkQueue::Verdict::kAdmitted);
  gate.set_value();
  queue.stop_and_join();
  EXPECT_EQ(queue.try_push(noop_job(), 0.5, 2.5).verdict, WorkQueue::Verdict::kStopping);
}

// Jobs ahead are shared among the workers: with 2 busy workers and 2 waiting, a new job waits for
// 3 of the 4 to finish, 1.5 rounds of 1 s.
TEST(WorkQueue, ExpectedWaitIsSharedAmongWorkers) {
  WorkQueue queue(100, 2);
  EXPECT_DOUBLE_EQ(queue.expected_wait(1.0), 0.0);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(queue.try_push(noop_job()));  // not started: all wait
  EXPECT_DOUBLE_EQ(queue.expected_wait(1.0), 1.5);
  queue.start();
  queue.stop_and_join();
}

// `--queue` stays a plain bound: with 1 worker and 2 allowed to wait, exactly 1 + 2 jobs are in
// flight whatever the wait budget says, and a job that takes the last slot is not refused.
TEST(WorkQueue, QueueBoundIsWorkersPlusWaiting) {
  WorkQueue queue(2, 1);
  queue.start();
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(queue.try_push(blocking_job(opened, &started)));
  started.get_future().wait();
  ASSERT_TRUE(queue.try_push(blocking_job(opened)));
  ASSERT_TRUE(queue.try_push(blocking_job(opened)));
  const WorkQueue::Admission full = queue.try_push(noop_job(), 0.001, 1e9);
  EXPECT_EQ(full.verdict, WorkQueue::Verdict::kQueueFull);
  EXPECT_DOUBLE_EQ(full.retry_after_seconds, 0.001);
  gate.set_value();
  queue.stop_and_join();
}

// The job learns how long it waited, so it can refuse to run for a client that gave up.
TEST(WorkQueue, JobsKnowHowLongTheyWaited) {
  WorkQueue queue(10, 1);
  std::promise<WorkQueue::Clock::duration> waited;
  ASSERT_TRUE(queue.try_push([&](int, WorkQueue::Clock::duration w) {
    waited.set_value(w);
    return WorkQueue::Completion{};
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  queue.start();
  EXPECT_GE(waited.get_future().get(), std::chrono::milliseconds(50));
  queue.stop_and_join();
}

}  // namespace
}  // namespace clouddetect::http
