#include "yolo/nms.h"

#include <gtest/gtest.h>

namespace clouddetect::yolo {
namespace {

TEST(Iou, KnownOverlaps) {
  EXPECT_FLOAT_EQ(iou({0, 0, 2, 2}, {0, 0, 2, 2}), 1.0f);
  EXPECT_FLOAT_EQ(iou({0, 0, 2, 2}, {1, 0, 2, 2}), 2.0f / 6.0f);
  EXPECT_FLOAT_EQ(iou({0, 0, 1, 1}, {2, 2, 1, 1}), 0.0f);
  EXPECT_FLOAT_EQ(iou({0, 0, 0, 0}, {0, 0, 0, 0}), 0.0f);
}

TEST(Nms, SuppressesOverlapsWithinAClassOnly) {
  std::vector<Candidate> c = {
      {0, 0.6f, {0.0f, 0.0f, 1.0f, 1.0f}},
      {0, 0.9f, {0.05f, 0.0f, 1.0f, 1.0f}},  // best of class 0
      {1, 0.7f, {0.0f, 0.0f, 1.0f, 1.0f}},   // same place, other class: kept
      {0, 0.5f, {3.0f, 3.0f, 1.0f, 1.0f}},   // class 0 far away: kept
  };
  nms(c, 0.45f);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_FLOAT_EQ(c[0].score, 0.9f);
  EXPECT_EQ(c[1].class_id, 1);
  EXPECT_FLOAT_EQ(c[2].score, 0.5f);
}

TEST(Nms, ThresholdIsStrict) {
  std::vector<Candidate> c = {{0, 0.9f, {0, 0, 2, 2}}, {0, 0.8f, {1, 0, 2, 2}}};  // IoU 1/3
  nms(c, 1.0f / 3.0f + 1e-6f);
  EXPECT_EQ(c.size(), 2u);
  nms(c, 0.3f);
  EXPECT_EQ(c.size(), 1u);
}

}  // namespace
}  // namespace clouddetect::yolo
