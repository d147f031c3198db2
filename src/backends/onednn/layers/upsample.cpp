#include "backends/onednn/layers/upsample.h"

namespace clouddetect::onednn {

using dnnl::memory;

memory make_upsample(Plan& plan, const darknet::Layer& layer, const memory& src, const memory* into) {
  const memory::dims dst_dims = {1, layer.output.c, layer.output.h, layer.output.w};
  // oneDNN's nearest maps dst x to round((x + 0.5) / s - 0.5), which is x / s for an integer s.
  dnnl::resampling_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::resampling_nearest,
                                      src.get_desc(),
                                      into ? into->get_desc() : any_desc(dst_dims, src.get_desc().data_type()));
  dnnl::resampling_forward::primitive_desc pd(desc, Plan::attr(), plan.engine());
  memory dst = into ? *into : plan.new_memory(pd.dst_desc());
  plan.add(dnnl::resampling_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}}, pd.scratchpad_desc());
  return dst;
}

}  // namespace clouddetect::onednn
