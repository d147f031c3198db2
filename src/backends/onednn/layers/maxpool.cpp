#include "backends/onednn/layers/maxpool.h"

#include <algorithm>
#include <cstddef>

#include "backends/onednn/kernels/max_pool_2x2.h"

namespace clouddetect::onednn {

using dnnl::memory;

memory make_maxpool(Plan& plan, const darknet::Layer& layer, const memory& src) {
  if (max_pool_2x2_fits(layer, src.get_desc())) return make_max_pool_2x2(plan, layer, src);
  const auto& p = layer.maxpool;
  const memory::dims dst_dims = {1, layer.output.c, layer.output.h, layer.output.w};
  const int pad_l = p.padding / 2;
  const memory::dim pad_b = std::max(0, (layer.output.h - 1) * p.stride + p.size - layer.input.h - pad_l);
  const memory::dim pad_r = std::max(0, (layer.output.w - 1) * p.stride + p.size - layer.input.w - pad_l);
  dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max, src.get_desc(),
                                   any_desc(dst_dims, src.get_desc().data_type()), {p.stride, p.stride},
                                   {p.size, p.size}, {pad_l, pad_l}, {pad_b, pad_r});
  dnnl::pooling_forward::primitive_desc pd(desc, Plan::attr(), plan.engine());
  memory dst = plan.new_memory(pd.dst_desc());
  // Inference max pooling needs no workspace.
  plan.add(dnnl::pooling_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}, pd.scratchpad_desc());
  return dst;
}

}  // namespace clouddetect::onednn
