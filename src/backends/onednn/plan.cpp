#include "backends/onednn/plan.h"

#include <algorithm>

namespace clouddetect::onednn {

using dnnl::memory;

namespace {

memory::format_tag preferred_activation_tag() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core:
    case dnnl::cpu_isa::avx512_core_vnni:
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
    case dnnl::cpu_isa::avx512_mic:
    case dnnl::cpu_isa::avx512_mic_4ops:
      return memory::format_tag::nChw16c;
    default:
      return memory::format_tag::nChw8c;
  }
}

}  // namespace

Plan::Plan(dnnl::engine engine)
    : engine_(std::move(engine)), stream_(engine_), activation_tag_(preferred_activation_tag()) {}

dnnl::primitive_attr Plan::attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

memory Plan::new_memory(const memory::desc& md) { return memory(md, engine_); }

void Plan::add(const dnnl::primitive& primitive, std::unordered_map<int, memory> args,
               const memory::desc& scratchpad) {
  Step step{primitive, std::move(args), {}, scratchpad.get_size() > 0};
  scratchpad_bytes_ = std::max(scratchpad_bytes_, scratchpad.get_size());
  steps_.push_back(std::move(step));
}

memory Plan::reorder_to(const memory& source, const memory::desc& md) {
  if (source.get_desc() == md) return source;
  memory target = new_memory(md);
  dnnl::reorder::primitive_desc pd(engine_, source.get_desc(), engine_, md, attr());
  add(dnnl::reorder(pd), {{DNNL_ARG_FROM, source}, {DNNL_ARG_TO, target}}, pd.scratchpad_desc());
  return target;
}

void Plan::finalize() {
  scratchpad_ = memory(memory::desc({static_cast<memory::dim>(std::max<std::size_t>(scratchpad_bytes_, 1))},
                                    memory::data_type::u8, memory::format_tag::x),
                       engine_);
  for (Step& step : steps_) {
    if (step.uses_scratchpad) step.args[DNNL_ARG_SCRATCHPAD] = scratchpad_;
    step.c_args.clear();
    for (const auto& [arg, mem] : step.args) step.c_args.push_back({arg, mem.get()});
  }
}

void Plan::execute() {
  for (const Step& step : steps_) {
    dnnl::error::wrap_c_api(dnnl_primitive_execute(step.primitive.get(), stream_.get(),
                                                   static_cast<int>(step.c_args.size()), step.c_args.data()),
                            "could not execute a primitive");
  }
  stream_.wait();
}

memory::desc plain_desc(const memory::dims& dims) {
  using tag = memory::format_tag;
  static const tag by_rank[] = {tag::undef, tag::a, tag::ab, tag::abc, tag::abcd, tag::abcde};
  return memory::desc(dims, memory::data_type::f32, by_rank[dims.size()]);
}

memory::desc any_desc(const memory::dims& dims) {
  return memory::desc(dims, memory::data_type::f32, memory::format_tag::any);
}

int channel_block(const memory::desc& md) {
  using tag = memory::format_tag;
  const memory::dims dims = md.dims();
  if (dims.size() != 4) return 0;
  const std::pair<tag, int> candidates[] = {{tag::nChw16c, 16}, {tag::nChw8c, 8}, {tag::nChw4c, 4},
                                            {tag::nchw, 1}, {tag::nhwc, 1}};
  for (const auto& [format, block] : candidates) {
    if (memory::desc(dims, md.data_type(), format) == md) return block;
  }
  return 0;
}

}  // namespace clouddetect::onednn

namespace clouddetect::onednn {

void append_activation(dnnl::post_ops& ops, darknet::Activation activation) {
  switch (activation) {
    case darknet::Activation::kLinear: return;
    case darknet::Activation::kLeaky: ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.1f, 0.0f); return;
    case darknet::Activation::kRelu: ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f); return;
    case darknet::Activation::kLogistic:
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_logistic, 0.0f, 0.0f);
      return;
  }
}

}  // namespace clouddetect::onednn
