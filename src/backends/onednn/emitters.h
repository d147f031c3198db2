// The emitters: one per cfg section, each appending the steps of one layer to a Plan, following
// the decisions of the graph analysis (graph.h) and, for int8, the scales (int8_scales.h). The
// primitives themselves are built by layers/<section>.h and our kernels (kernels/).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "backends/onednn/graph.h"
#include "backends/onednn/int8_scales.h"
#include "backends/onednn/plan.h"
#include "backends/onednn/prepared_model.h"
#include "darknet/model.h"

namespace clouddetect::onednn {

// A tensor of the plan and how to read it: f32 holds real values, s8 and u8 q stand for
// (q - zero_point) * scale of its channel (the network input: u8, zero point 0).
struct Value {
  dnnl::memory data;
  Scales scales{1.0f};
  int zero_point = 0;
  bool is_int8() const { return data.get_desc().data_type() != dnnl::memory::data_type::f32; }
  Quantisation quantisation() const { return {scales, zero_point}; }
};

// "[convolutional] layer 12 (cfg line 80)", for messages.
std::string where(const darknet::Layer& layer);

class Emitter {
 public:
  // `quantisations`: int8 only, per layer (int8_quantisations()); `means`: int8 only, per layer and
  // channel, the calibration's mean output (empty if the calibration file has none); `keep_fp32`: int8 only, per layer,
  // the convolutions calibration keeps in fp32 (mixed precision). In fp32, allocates the outputs of the routes written
  // in place and their parts' views first.
  Emitter(Plan& plan, const darknet::Model& model, const PreparedModel& prepared, const GraphAnalysis& graph, Mode mode,
          std::vector<Quantisation> quantisations, std::vector<std::vector<float>> means, std::vector<bool> keep_fp32,
          Value network_input);

  // Appends `layer` (after every layer before it); throws Error{kInternal} if its output has
  // another shape than the model says.
  void emit(const darknet::Layer& layer);
  // Appends the copy of each head, as plain fp32 at real values, into memories with no storage of
  // their own (forward() points them at the caller's tensors); returns them.
  std::vector<dnnl::memory> emit_heads();

  const std::vector<Value>& outputs() const { return outputs_; }

 private:
  Value convolutional(const darknet::Layer& layer, const Value& previous);
  Value convolutional_int8(const darknet::Layer& layer, const Value& previous);
  Value maxpool(const darknet::Layer& layer, const Value& previous);
  Value upsample(const darknet::Layer& layer, const Value& previous);
  Value route(const darknet::Layer& layer);
  Value shortcut(const darknet::Layer& layer, const Value& previous);

  void place_routes_in_place();
  const dnnl::memory* target(int layer) const;
  Value to_f32(const Value& value);
  Value to_int8(const Value& value, const Quantisation& quantisation);  // an int8 value stays as it is (nhwc)

  Plan& plan_;
  const darknet::Model& model_;
  const PreparedModel& prepared_;
  const GraphAnalysis& graph_;
  Mode mode_;
  std::vector<Quantisation> quantisations_;
  std::vector<std::vector<float>> means_;
  std::vector<bool> keep_fp32_;
  Value network_input_;
  std::vector<Value> outputs_;
  std::vector<dnnl::memory> into_;        // per layer: the route view (or route) it writes; empty: its own
  std::vector<bool> fused_;               // per [shortcut]: done by the convolution before it
  std::vector<bool> pooled_by_previous_;  // per [maxpool]: done by the convolution before it
};

}  // namespace clouddetect::onednn
