#include "yolo/decode_heads.h"

#include <gtest/gtest.h>

#include <cmath>

#include "darknet/cfg_parser.h"
#include "yolo/nms.h"

namespace clouddetect::yolo {
namespace {

// 64x64 input, one head on a 4x4 grid (stride 16), 2 anchors of 3, 3 classes.
darknet::Model tiny_model() {
  return darknet::parse_cfg_text(
      "[net]\nwidth=64\nheight=64\n"
      "[convolutional]\nfilters=16\nsize=3\nstride=16\npad=1\nactivation=linear\n"
      "[yolo]\nmask=1,2\nanchors=8,8,16,32,32,16\nclasses=3\nnum=3\n",
      "tiny.cfg");
}

float logit(float p) { return std::log(p / (1 - p)); }

TEST(DecodeHeads, DecodesOneCellAsDarknet) {
  darknet::Model model = tiny_model();
  ASSERT_EQ(model.layers[0].output.h, 4);
  Tensor head;
  head.reshape({1, 16, 4, 4});
  std::fill(head.data.begin(), head.data.end(), -20.0f);  // nothing anywhere...
  const int cells = 16, entries = 8, anchor = 1, row = 2, col = 1, cell = row * 4 + col;
  float* a = head.data.data() + anchor * entries * cells;
  a[0 * cells + cell] = 0.0f;  // sigmoid = 0.5 -> centre of the cell
  a[1 * cells + cell] = logit(0.25f);
  a[2 * cells + cell] = std::log(2.0f);     // twice anchor 2's width (32)
  a[3 * cells + cell] = 0.0f;               // anchor 2's height (16)
  a[4 * cells + cell] = logit(0.9f);        // objectness
  a[(5 + 2) * cells + cell] = logit(0.8f);  // class 2
  std::vector<Candidate> out;
  decode_heads(model, {head}, 0.5f, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].class_id, 2);
  EXPECT_NEAR(out[0].score, 0.72f, 1e-5);
  const float cx = (col + 0.5f) / 4, cy = (row + 0.25f) / 4, w = 64.0f / 64, h = 16.0f / 64;
  EXPECT_NEAR(out[0].box.x, cx - w / 2, 1e-5);
  EXPECT_NEAR(out[0].box.y, cy - h / 2, 1e-5);
  EXPECT_NEAR(out[0].box.w, w, 1e-5);
  EXPECT_NEAR(out[0].box.h, h, 1e-5);

  out.clear();
  decode_heads(model, {head}, 0.75f, out);  // 0.72 is below this threshold
  EXPECT_TRUE(out.empty());
}

TEST(DecodeHeads, RejectsWrongHeadCount) {
  darknet::Model model = tiny_model();
  std::vector<Candidate> out;
  EXPECT_THROW(decode_heads(model, {}, 0.5f, out), std::exception);
}

}  // namespace
}  // namespace clouddetect::yolo
