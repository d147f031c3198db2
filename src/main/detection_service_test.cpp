// The service time estimate that admission multiplies by the queue (ServiceEstimates).
#include "main/detection_service.h"

#include <gtest/gtest.h>

#include <cmath>

namespace clouddetect {
namespace {

// A 0.5-CPU pod throttles in 100 ms periods: a 50 ms request takes 25 or 75 ms of wall time in turn.
// The estimate must stay near the mean, or 300 queued requests would look like 10 or 20 s at random.
TEST(ServiceEstimates, ThrottledFastRequestsGiveASteadyMean) {
  ServiceEstimates estimates;
  for (int i = 0; i < 400; ++i) estimates.observe(i % 2 == 0 ? 0.025 : 0.075);
  double low = 1, high = 0;
  for (int i = 0; i < 100; ++i) {
    estimates.observe(i % 2 == 0 ? 0.025 : 0.075);
    low = std::min(low, estimates.service_seconds());
    high = std::max(high, estimates.service_seconds());
  }
  EXPECT_GT(low, 0.05 * 0.97);
  EXPECT_LT(high, 0.05 * 1.03);
}

// Fast requests: a change of the mean is followed within a few seconds of work (here 4x slower).
TEST(ServiceEstimates, FollowsAChangeWithinSecondsOfWork) {
  ServiceEstimates estimates;
  for (int i = 0; i < 200; ++i) estimates.observe(0.015);
  double work = 0;
  while (estimates.service_seconds() < 0.06 * 0.9) {
    estimates.observe(0.06);
    work += 0.06;
    ASSERT_LT(work, 10.0);
  }
  EXPECT_GT(work, 1.0);  // not one request's worth: a single slow request does not swing it
}

// Slow requests (a full-size model, ~1 s each): about ten requests follow a change.
TEST(ServiceEstimates, SlowRequestsAreFollowedWithinAboutTenRequests) {
  ServiceEstimates estimates;
  estimates.observe(1.0);  // the warm-up seeds it
  EXPECT_DOUBLE_EQ(estimates.service_seconds(), 1.0);
  int requests = 0;
  while (estimates.service_seconds() < 2.0 * 0.9) {
    estimates.observe(2.0);
    ASSERT_LE(++requests, 11);
  }
}

}  // namespace
}  // namespace clouddetect
