#include "http/memory_budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace clouddetect::http {
namespace {

using Use = MemoryBudget::Use;

TEST(MemoryBudget, RefusesWhatDoesNotFitAndGivesBackOnDestruction) {
  MemoryBudget budget([] { return std::int64_t{1000}; }, 0.5);
  {
    MemoryBudget::Reservation body = budget.reservation(Use::kWaiting);
    EXPECT_TRUE(body.try_grow(400));
    EXPECT_FALSE(body.try_grow(101));  // waiting work: at most half
    EXPECT_EQ(body.bytes(), 400);
    MemoryBudget::Reservation work = budget.reservation(Use::kWorking);
    EXPECT_TRUE(work.try_grow(600));  // the workers' half is still free
    EXPECT_FALSE(work.try_grow(1));   // the whole budget is held
    EXPECT_EQ(budget.held(), 1000);
    work.shrink_to(100);  // e.g. the decoded image is gone, the answer stays
    EXPECT_EQ(budget.held(), 500);
    MemoryBudget::Reservation moved = std::move(work);
    EXPECT_EQ(work.bytes(), 0);
    EXPECT_EQ(moved.bytes(), 100);
    EXPECT_EQ(budget.held(), 500);
  }
  EXPECT_EQ(budget.held(), 0);
  EXPECT_EQ(budget.waiting_held(), 0);
}

TEST(MemoryBudget, CapacityCanChangeAndNeverGoesBelowZero) {
  std::atomic<std::int64_t> capacity{-5};
  MemoryBudget budget([&] { return capacity.load(); }, 1.0);
  MemoryBudget::Reservation r = budget.reservation(Use::kWorking);
  EXPECT_EQ(budget.capacity(), 0);
  EXPECT_FALSE(r.try_grow(1));
  capacity = 10;
  EXPECT_TRUE(r.try_grow(10));
}

TEST(MemoryBudget, WithoutCapacityEverythingFits) {
  MemoryBudget budget;
  MemoryBudget::Reservation r = budget.reservation(Use::kWaiting);
  EXPECT_FALSE(budget.limited());
  EXPECT_TRUE(r.try_grow(std::int64_t{1} << 50));
  EXPECT_FALSE(MemoryBudget::Reservation().try_grow(1));  // not bound to a budget
}

// Many threads reserving at once never hold more than the capacity together.
TEST(MemoryBudget, ConcurrentReservationsStayWithinTheCapacity) {
  MemoryBudget budget([] { return std::int64_t{10'000}; }, 1.0);
  std::atomic<std::int64_t> peak{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        MemoryBudget::Reservation r = budget.reservation(Use::kWorking);
        if (!r.try_grow(3000)) continue;
        std::int64_t held = budget.held(), seen = peak.load();
        while (held > seen && !peak.compare_exchange_weak(seen, held)) {
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(peak.load(), 10'000);
  EXPECT_GT(peak.load(), 0);
  EXPECT_EQ(budget.held(), 0);
}

}  // namespace
}  // namespace clouddetect::http
