#include "backends/onednn/layers/shortcut.h"

#include "backends/onednn/activation.h"

namespace clouddetect::onednn {

using dnnl::memory;

memory make_shortcut(Plan& plan, const darknet::Layer& layer, const memory& previous, const memory& from) {
  memory other = plan.reorder_to(from, previous.get_desc());
  dnnl::binary::desc desc(dnnl::algorithm::binary_add, previous.get_desc(), other.get_desc(), previous.get_desc());
  dnnl::binary::primitive_desc pd(desc, Plan::attr(), plan.engine());
  memory dst = plan.new_memory(pd.dst_desc());
  plan.add(dnnl::binary(pd), {{DNNL_ARG_SRC_0, previous}, {DNNL_ARG_SRC_1, other}, {DNNL_ARG_DST, dst}},
           pd.scratchpad_desc());
  // The activation runs as a separate in-place eltwise, not as a binary post-op: oneDNN 2.6's
  // jit binary with an eltwise post-op corrupts memory on nChw8c under AVX-512 (layers_test).
  append_activation_in_place(plan, layer.shortcut.activation, dst);
  return dst;
}

}  // namespace clouddetect::onednn
