#include "backends/onednn/activation.h"

namespace clouddetect::onednn {

void append_activation(dnnl::post_ops& ops, darknet::Activation activation) {
  switch (activation) {
    case darknet::Activation::kLinear:
      return;
    case darknet::Activation::kLeaky:
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, kLeakySlope, 0.0f);
      return;
    case darknet::Activation::kRelu:
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
      return;
    case darknet::Activation::kLogistic:
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_logistic, 0.0f, 0.0f);
      return;
    case darknet::Activation::kMish:
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_mish, 0.0f, 0.0f);
      return;
  }
}

void append_activation_in_place(Plan& plan, darknet::Activation activation, const dnnl::memory& data) {
  dnnl::post_ops ops;
  append_activation(ops, activation);
  if (ops.len() == 0) return;
  dnnl::algorithm algorithm;
  float scale, alpha, beta;
  ops.get_params_eltwise(0, scale, algorithm, alpha, beta);
  dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, algorithm, data.get_desc(), alpha, beta);
  dnnl::eltwise_forward::primitive_desc pd(desc, Plan::attr(), plan.engine());
  plan.add(dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, data}, {DNNL_ARG_DST, data}}, pd.scratchpad_desc());
}

bool scale_invariant(darknet::Activation activation) {
  return activation == darknet::Activation::kLinear || activation == darknet::Activation::kRelu ||
         activation == darknet::Activation::kLeaky;
}

}  // namespace clouddetect::onednn
