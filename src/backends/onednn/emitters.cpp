#include "backends/onednn/emitters.h"

#include <optional>
#include <string>

#include "backends/onednn/activation.h"
#include "backends/onednn/layers/convolutional.h"
#include "backends/onednn/layers/maxpool.h"
#include "backends/onednn/layers/route.h"
#include "backends/onednn/layers/shortcut.h"
#include "backends/onednn/layers/upsample.h"
#include "core/error.h"

namespace clouddetect::onednn {

using darknet::LayerType;
using dnnl::memory;

std::string where(const darknet::Layer& layer) {
  return std::string("[") + darknet::to_string(layer.type) + "] layer " + std::to_string(layer.index) + " (cfg line " +
         std::to_string(layer.line) + ")";
}

Emitter::Emitter(Plan& plan, const darknet::Model& model, const PreparedModel& prepared, const GraphAnalysis& graph,
                 Mode mode, std::vector<Quantisation> quantisations, std::vector<std::vector<float>> means,
                 std::vector<bool> keep_fp32, Value network_input)
    : plan_(plan),
      model_(model),
      prepared_(prepared),
      graph_(graph),
      mode_(mode),
      quantisations_(std::move(quantisations)),
      means_(std::move(means)),
      keep_fp32_(std::move(keep_fp32)),
      network_input_(std::move(network_input)),
      outputs_(model.layers.size()),
      into_(model.layers.size()),
      fused_(model.layers.size(), false),
      pooled_by_previous_(model.layers.size(), false) {
  place_routes_in_place();
}

// A route written in place: its output is allocated first and each part's producer writes straight
// into its channel range, a contiguous view in the blocked layout (whole channel blocks).
void Emitter::place_routes_in_place() {
  auto output_desc = [&](const darknet::Layer& layer) {
    return plan_.activation_desc({1, layer.output.c, layer.output.h, layer.output.w});
  };
  for (const darknet::Layer& layer : model_.layers) {
    if (layer.type != LayerType::kRoute || graph_.route_in_place[layer.index] != layer.index) continue;
    const memory whole = plan_.new_memory(output_desc(layer));
    std::size_t offset = 0;
    for (int part : layer.route.layers) {
      const memory::desc md = output_desc(model_.layers[part]);
      into_[part] = plan_.new_view(whole, md, offset);
      offset += md.get_size();
    }
    into_[layer.index] = whole;
  }
}

const memory* Emitter::target(int layer) const {
  return into_[static_cast<std::size_t>(layer)] ? &into_[static_cast<std::size_t>(layer)] : nullptr;
}

void Emitter::emit(const darknet::Layer& layer) {
  const Value& previous = layer.index == 0 ? network_input_ : outputs_[layer.index - 1];
  Value& out = outputs_[layer.index];
  switch (layer.type) {
    case LayerType::kConvolutional:
      out = convolutional(layer, previous);
      break;
    case LayerType::kMaxpool:
      out = maxpool(layer, previous);
      break;
    case LayerType::kUpsample:
      out = upsample(layer, previous);
      break;
    case LayerType::kRoute:
      out = route(layer);
      break;
    case LayerType::kShortcut:
      out = shortcut(layer, previous);
      break;
    case LayerType::kDropout:  // identity at inference
    case LayerType::kYolo:     // the head is the previous layer's output, returned raw
      out = previous;
      break;
  }
  const int n = static_cast<int>(model_.layers.size());
  const bool pooled = layer.index + 1 < n && pooled_by_previous_[layer.index + 1];
  const darknet::Shape& shape = pooled ? model_.layers[layer.index + 1].output : layer.output;
  if (out.data.get_desc().dims() != memory::dims{1, shape.c, shape.h, shape.w}) {
    throw Error(ErrorCode::kInternal, "native backend: " + where(layer) + " produced an unexpected shape");
  }
}

Value Emitter::convolutional(const darknet::Layer& layer, const Value& previous) {
  const int shortcut = graph_.shortcut_of[layer.index];
  const darknet::Activation after_sum =
      shortcut >= 0 ? model_.layers[shortcut].shortcut.activation : darknet::Activation::kLinear;
  // Mixed precision: calibration may keep the convolutions int8 hurts most in fp32.
  const bool kept_fp32 = layer.index < static_cast<int>(keep_fp32_.size()) && keep_fp32_[layer.index];
  if (mode_ == Mode::kInt8 && !kept_fp32 && scale_invariant(layer.convolutional.activation) &&
      scale_invariant(after_sum)) {
    return convolutional_int8(layer, previous);
  }
  const PreparedConvolution& prepared = prepared_.convolution(layer.index);
  const Value src = to_f32(previous);
  if (graph_.pool_after[layer.index]) {
    if (std::optional<memory> pooled = make_convolutional_pooled(plan_, prepared, src.data)) {
      pooled_by_previous_[layer.index + 1] = true;
      return {*pooled, {1.0f}};
    }
  }
  const memory::desc dst_md = plan_.activation_desc({1, layer.output.c, layer.output.h, layer.output.w});
  if (shortcut >= 0 && outputs_[model_.layers[shortcut].shortcut.from].data.get_desc() == dst_md &&
      fused_shortcut_fits(plan_, layer, after_sum, false)) {
    fused_[shortcut] = true;
    const memory& from = outputs_[model_.layers[shortcut].shortcut.from].data;
    return {make_convolutional(plan_, prepared, src.data, &from, after_sum), {1.0f}};
  }
  return {make_convolutional(plan_, prepared, src.data, nullptr, darknet::Activation::kLinear, target(layer.index)),
          {1.0f}};
}

Value Emitter::convolutional_int8(const darknet::Layer& layer, const Value& previous) {
  const int shortcut = graph_.shortcut_of[layer.index];
  const Value src = to_int8(previous, layer.index == 0 ? previous.quantisation() : quantisations_[layer.index - 1]);
  Int8Scales scales;
  scales.src = src.scales;
  scales.src_zero_point = src.zero_point;
  if (layer.index > 0 && !means_.empty()) scales.src_mean = means_[layer.index - 1];
  // Heads stay fp32 for decoding: the last convolution writes real values.
  const bool head = graph_.feeds_head[layer.index];
  const Quantisation dst = head ? Quantisation{{1.0f}, 0} : quantisations_[layer.index];
  scales.dst = dst.scales;
  scales.dst_zero_point = dst.zero_point;
  scales.dst_type = head ? memory::data_type::f32 : dst.zero_point ? memory::data_type::u8 : memory::data_type::s8;
  const memory::desc dst_md({1, layer.output.c, layer.output.h, layer.output.w}, scales.dst_type,
                            memory::format_tag::nhwc);
  const PreparedConvolution& prepared = prepared_.convolution(layer.index);
  const Value* from = shortcut >= 0 ? &outputs_[model_.layers[shortcut].shortcut.from] : nullptr;
  if (from && !head && from->data.get_desc() == dst_md && from->quantisation() == dst &&
      fused_shortcut_fits(plan_, layer, model_.layers[shortcut].shortcut.activation, true)) {
    fused_[shortcut] = true;
    return {make_convolutional_int8(plan_, prepared, src.data, scales, &from->data,
                                    model_.layers[shortcut].shortcut.activation),
            dst.scales, dst.zero_point};
  }
  return {make_convolutional_int8(plan_, prepared, src.data, scales), dst.scales, dst.zero_point};
}

// Max pooling and nearest upsampling commute with a positive scale: int8 stays int8.
Value Emitter::maxpool(const darknet::Layer& layer, const Value& previous) {
  if (pooled_by_previous_[layer.index]) return previous;
  return {make_maxpool(plan_, layer, previous.data), previous.scales, previous.zero_point};
}

Value Emitter::upsample(const darknet::Layer& layer, const Value& previous) {
  return {make_upsample(plan_, layer, previous.data, target(layer.index)), previous.scales, previous.zero_point};
}

// int8 parts keep their values and per-channel scales: the output's scales are the (sliced) input
// scales concatenated. Parts must share a type, zero point and layout.
Value Emitter::route(const darknet::Layer& layer) {
  if (const memory* whole = target(layer.index)) return {*whole, {1.0f}};  // written in place by its parts
  const Value& first = outputs_.at(layer.route.layers.front());
  bool all_int8 = first.is_int8();
  for (int index : layer.route.layers) {
    const Value& part = outputs_.at(index);
    all_int8 = all_int8 && part.data.get_desc().data_type() == first.data.get_desc().data_type() &&
               part.zero_point == first.zero_point;
  }
  std::vector<memory> inputs;
  std::vector<Scales> part_scales;
  std::vector<int> part_channels;
  for (int index : layer.route.layers) {
    const Value input = all_int8 ? to_int8(outputs_.at(index), {}) : to_f32(outputs_.at(index));
    inputs.push_back(input.data);
    part_scales.push_back(input.scales);
    part_channels.push_back(static_cast<int>(input.data.get_desc().dims()[1]));
  }
  const memory output = make_route(plan_, layer, inputs);
  if (!all_int8) return {output, {1.0f}};
  return {output, route_scales(part_scales, part_channels, layer.route.groups, layer.route.group_id), first.zero_point};
}

Value Emitter::shortcut(const darknet::Layer& layer, const Value& previous) {
  if (fused_[layer.index]) return previous;
  return {make_shortcut(plan_, layer, to_f32(previous).data, to_f32(outputs_.at(layer.shortcut.from)).data), {1.0f}};
}

std::vector<memory> Emitter::emit_heads() {
  std::vector<memory> heads;
  for (int yolo : model_.yolo_layers()) {
    const Value& head = outputs_[yolo - 1];
    memory user(plain_desc(head.data.get_desc().dims()), plan_.engine(), DNNL_MEMORY_NONE);
    dnnl::primitive_attr attr = Plan::attr();
    if (head.scales != Scales{1.0f}) attr.set_output_scales(head.scales.size() == 1 ? 0 : 1 << 1, head.scales);
    if (head.zero_point != 0) attr.set_zero_points(DNNL_ARG_FROM, 0, {head.zero_point});
    dnnl::reorder::primitive_desc pd(plan_.engine(), head.data.get_desc(), plan_.engine(), user.get_desc(), attr);
    plan_.add(dnnl::reorder(pd), {{DNNL_ARG_FROM, head.data}, {DNNL_ARG_TO, user}}, pd.scratchpad_desc());
    heads.push_back(user);
  }
  return heads;
}

Value Emitter::to_f32(const Value& value) {
  if (!value.is_int8()) return value;
  return {
      plan_.convert(value.data, plan_.activation_desc(value.data.get_desc().dims()), value.scales, value.zero_point),
      {1.0f}};
}

Value Emitter::to_int8(const Value& value, const Quantisation& quantisation) {
  const memory::dims dims = value.data.get_desc().dims();
  if (value.is_int8()) {
    return {plan_.reorder_to(value.data, plan_.activation_desc(dims, value.data.get_desc().data_type())), value.scales,
            value.zero_point};
  }
  const auto type = quantisation.zero_point ? memory::data_type::u8 : memory::data_type::s8;
  return {plan_.convert(value.data, plan_.activation_desc(dims, type), inverse(quantisation.scales), 0,
                        quantisation.zero_point),
          quantisation.scales, quantisation.zero_point};
}

}  // namespace clouddetect::onednn
