// What the native layer tests share: random data, the darknet-style reference loops and a
// harness that feeds plain NCHW data to one layer and reads its output back.
// Tolerance: max |native - reference| / max(1, |reference|) <= 1e-4 per element (fp32 sums of at
// most a few hundred products differ from the loop's order by ~1e-6).
#pragma once

#include <dnnl.hpp>
#include <utility>
#include <vector>

#include "backends/onednn/plan.h"
#include "darknet/model.h"

namespace clouddetect::onednn::layer_test {

using darknet::Activation;
using darknet::Layer;
using darknet::Shape;
using dnnl::memory;
using tag = memory::format_tag;

constexpr float kTolerance = 1e-4f;

std::vector<float> random_vector(std::size_t n, unsigned seed, float lo = -1.0f, float hi = 1.0f);
float activate(float x, Activation a);
void expect_close(const std::vector<float>& actual, const std::vector<float>& expected);

// Feeds plain NCHW data in a given layout to one layer and reads its output back as NCHW.
class Harness {
 public:
  Harness() : plan_(dnnl::engine(dnnl::engine::kind::cpu, 0)) {}
  explicit Harness(Plan plan) : plan_(std::move(plan)) {}
  Plan& plan() { return plan_; }

  memory input(const std::vector<float>& data, const Shape& s, tag layout) {
    return input(data, s, memory::desc({1, s.c, s.h, s.w}, memory::data_type::f32, layout));
  }
  memory input(const std::vector<float>& data, const Shape& s, const memory::desc& layout) {
    inputs_.push_back(data);
    memory user(plain_desc({1, s.c, s.h, s.w}), plan_.engine(), inputs_.back().data());
    return plan_.reorder_to(user, layout);
  }

  std::vector<float> run(const memory& out) {
    memory::dims dims = out.get_desc().dims();
    std::vector<float> result(static_cast<std::size_t>(dims[0] * dims[1] * dims[2] * dims[3]));
    memory user(plain_desc(dims), plan_.engine(), result.data());
    memory plain = plan_.reorder_to(out, user.get_desc());
    dnnl::reorder::primitive_desc pd(plan_.engine(), plain.get_desc(), plan_.engine(), user.get_desc());
    plan_.add(dnnl::reorder(pd), {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, user}}, pd.scratchpad_desc());
    plan_.finalize();
    plan_.execute();
    return result;
  }

 private:
  Plan plan_;
  std::vector<std::vector<float>> inputs_;
};

struct ConvCase {
  int c, h, w, filters, size, stride, pad, groups;
  bool batch_normalize;
  Activation activation;
};

// A [convolutional] layer with random weights (batch-norm statistics too when k asks for them).
Layer make_conv_layer(const ConvCase& k, unsigned seed);
// darknet forward_convolutional_layer + normalize/scale/add_bias + activate, unfolded.
std::vector<float> conv_reference(const Layer& layer, const std::vector<float>& in);
// A 2x2 stride-2 max pool of an even NCHW map.
std::vector<float> max_pool_2x2(const std::vector<float>& in, int c, int h, int w);

}  // namespace clouddetect::onednn::layer_test
