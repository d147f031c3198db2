// mean_average_precision on hand-made cases whose AP is known.
#include "eval/mean_ap.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"

namespace clouddetect::eval {
namespace {

GroundTruth truth(int class_id, float x, float y, float w, float h) { return {class_id, {x, y, w, h}}; }
Detection detection(int class_id, float score, float x, float y, float w, float h) {
  return {class_id, score, {x, y, w, h}};
}

TEST(MeanAp, PerfectDetectionsScoreOne) {
  std::vector<ImageResult> images(2);
  images[0].truth = {truth(0, 0, 0, 10, 10), truth(1, 50, 50, 20, 20)};
  images[0].detections = {detection(0, 0.9f, 0, 0, 10, 10), detection(1, 0.8f, 50, 50, 20, 20)};
  images[1].truth = {truth(0, 5, 5, 10, 10)};
  images[1].detections = {detection(0, 0.7f, 5, 5, 10, 10)};
  EXPECT_DOUBLE_EQ(mean_average_precision(images), 1.0);
}

TEST(MeanAp, MissedClassScoresZeroAndCountsInTheMean) {
  std::vector<ImageResult> images(1);
  images[0].truth = {truth(0, 0, 0, 10, 10), truth(3, 20, 20, 10, 10)};
  images[0].detections = {detection(0, 0.9f, 0, 0, 10, 10)};
  EXPECT_DOUBLE_EQ(mean_average_precision(images), 0.5);
}

TEST(MeanAp, RankingMatters) {
  // Two truths; a false positive ranked first, then both hits: precision 0, 1/2, 2/3 at recall
  // 0, 1/2, 1 -> interpolated AP = 1/2 * 2/3 + 1/2 * 2/3 = 2/3.
  std::vector<ImageResult> images(1);
  images[0].truth = {truth(0, 0, 0, 10, 10), truth(0, 100, 100, 10, 10)};
  images[0].detections = {detection(0, 0.9f, 300, 300, 10, 10), detection(0, 0.8f, 0, 0, 10, 10),
                          detection(0, 0.7f, 100, 100, 10, 10)};
  EXPECT_NEAR(mean_average_precision(images), 2.0 / 3.0, 1e-12);
}

TEST(MeanAp, DuplicateIsAFalsePositiveAndIouThresholdApplies) {
  std::vector<ImageResult> images(1);
  images[0].truth = {truth(0, 0, 0, 10, 10)};
  // IoU of a 10x10 box shifted by 4: 6*10 / (200 - 60) = 0.4286.
  images[0].detections = {detection(0, 0.9f, 4, 0, 10, 10)};
  EXPECT_DOUBLE_EQ(mean_average_precision(images, 0.5f), 0.0);
  EXPECT_DOUBLE_EQ(mean_average_precision(images, 0.4f), 1.0);
  // Hit, duplicate of it, second hit: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> the duplicate
  // costs precision on the second half of recall: AP = 1/2 * 1 + 1/2 * 2/3.
  images[0].truth.push_back(truth(0, 50, 50, 10, 10));
  images[0].detections = {detection(0, 0.9f, 0, 0, 10, 10), detection(0, 0.8f, 0, 0, 10, 10),
                          detection(0, 0.7f, 50, 50, 10, 10)};
  EXPECT_NEAR(mean_average_precision(images), 0.5 * 1.0 + 0.5 * 2.0 / 3.0, 1e-12);
}

TEST(MeanAp, AboveThresholdKeepsOnlyHigherScores) {
  std::vector<ImageResult> images(1);
  images[0].truth = {truth(0, 0, 0, 10, 10), truth(0, 100, 100, 10, 10)};
  images[0].detections = {detection(0, 0.9f, 0, 0, 10, 10), detection(0, 0.3f, 100, 100, 10, 10)};
  EXPECT_DOUBLE_EQ(mean_average_precision(images), 1.0);
  const auto served = above_threshold(images, 0.3f);  // strictly above, as decoding keeps them
  ASSERT_EQ(served[0].detections.size(), 1u);
  EXPECT_DOUBLE_EQ(mean_average_precision(served), 0.5);
}

// n images of one object each; `b` misses it on every `miss_every`-th image.
std::pair<std::vector<ImageResult>, std::vector<ImageResult>> one_object_each(int n, int miss_every) {
  std::vector<ImageResult> a(static_cast<std::size_t>(n)), b(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto& image_a = a[static_cast<std::size_t>(i)];
    auto& image_b = b[static_cast<std::size_t>(i)];
    image_a.truth = image_b.truth = {truth(i % 3, 10, 10, 20, 20)};
    image_a.detections = {detection(i % 3, 0.9f, 10, 10, 20, 20)};
    if (i % miss_every != 0) image_b.detections = image_a.detections;
  }
  return {a, b};
}

TEST(BootstrapMapDifference, SameDetectionsGiveZero) {
  auto [a, b] = one_object_each(40, 1000);
  const Interval interval = bootstrap_map_difference(a, a, 0.5f, 200);
  EXPECT_EQ(interval.low, 0.0);
  EXPECT_EQ(interval.high, 0.0);
}

TEST(BootstrapMapDifference, CoversTheDifferenceAndNarrowsWithMoreImages) {
  auto [a, b] = one_object_each(40, 4);  // b misses 10 of 40: mAP 1 vs 0.75
  const double difference = mean_average_precision(a) - mean_average_precision(b);
  EXPECT_NEAR(difference, 0.25, 0.02);
  const Interval small = bootstrap_map_difference(a, b, 0.5f, 500);
  EXPECT_LT(small.low, difference);
  EXPECT_GT(small.high, difference);
  EXPECT_GT(small.low, 0.0);
  auto [a4, b4] = one_object_each(160, 4);
  const Interval large = bootstrap_map_difference(a4, b4, 0.5f, 500);
  // Four times the images: about half the width (the standard error goes as 1/sqrt(n)).
  EXPECT_LT(large.high - large.low, 0.65 * (small.high - small.low));
  EXPECT_GT(large.high - large.low, 0.35 * (small.high - small.low));
}

// The bootstrap scores a draw by weighting images (how often each was drawn) instead of copying
// them: the weighted score must be the score of the copied images.
TEST(BootstrapMapDifference, AnImageDrawnTwiceCountsTwice) {
  std::vector<ImageResult> images(2);
  images[0].truth = {truth(0, 0, 0, 10, 10), truth(1, 40, 40, 10, 10)};
  images[0].detections = {detection(0, 0.9f, 0, 0, 10, 10), detection(0, 0.8f, 0, 0, 10, 10),
                          detection(1, 0.4f, 41, 40, 10, 10)};
  images[1].truth = {truth(0, 5, 5, 10, 10)};
  images[1].detections = {detection(0, 0.85f, 30, 30, 10, 10), detection(0, 0.5f, 5, 5, 10, 10)};
  std::vector<ImageResult> copied = {images[0], images[0], images[1]};
  std::vector<ImageResult> none(3);
  for (std::size_t i = 0; i < 3; ++i) none[i].truth = copied[i].truth;
  // With one image the draws are all that image: mAP(copies) - mAP(no detections) exactly.
  const Interval single = bootstrap_map_difference({images[1]}, {none[2]}, 0.5f, 20);
  EXPECT_DOUBLE_EQ(single.low, mean_average_precision({images[1]}));
  EXPECT_DOUBLE_EQ(single.high, single.low);
  const double map_copied = mean_average_precision(copied);
  EXPECT_GT(map_copied, 0.0);
  EXPECT_LT(map_copied, 1.0);
  // Every draw of the two images is one of {0,0}, {0,1}, {1,1} (in some order): its score must be
  // one of the three copied sets' scores.
  const Interval mixed = bootstrap_map_difference(images, {none[0], none[2]}, 0.5f, 200);
  const double candidates[] = {mean_average_precision({images[0], images[0]}), mean_average_precision(images),
                               mean_average_precision({images[1], images[1]})};
  for (double bound : {mixed.low, mixed.high}) {
    bool found = false;
    for (double c : candidates) found = found || std::abs(c - bound) < 1e-12;
    EXPECT_TRUE(found) << bound;
  }
}

TEST(BootstrapMapDifference, RefusesDifferentImageCounts) {
  auto [a, b] = one_object_each(10, 2);
  b.pop_back();
  EXPECT_THROW(bootstrap_map_difference(a, b), Error);
}

}  // namespace
}  // namespace clouddetect::eval
