#include "backends/onednn/layers/shortcut.h"

#include <algorithm>

#include "backends/onednn/activation.h"

namespace clouddetect::onednn {

using dnnl::memory;

namespace {

// The dense layout of `md`'s kind (nChw16c, nChw8c, nChw4c or nchw) for `dims`.
memory::desc same_layout(const memory::desc& md, const memory::dims& dims) {
  using tag = memory::format_tag;
  const int block = channel_block(md);
  const tag format = block == 16 ? tag::nChw16c : block == 8 ? tag::nChw8c : block == 4 ? tag::nChw4c : tag::nchw;
  return memory::desc(dims, md.data_type(), format);
}

// darknet's shortcut of inputs with different channel counts: the first min(c) channels of `from`
// are added to those of `previous`, the rest of `previous` passes. In a channel-blocked layout (or
// nchw) the first k channels, k a multiple of the block, are the memory's first bytes, so both
// sides are views at offset 0, not copies.
memory partial_sum(Plan& plan, const memory& previous, const memory& from) {
  const memory::dims dims = previous.get_desc().dims(), from_dims = from.get_desc().dims();
  const memory::dims common = {1, std::min(dims[1], from_dims[1]), dims[2], dims[3]};
  memory base = previous;
  const int block = channel_block(base.get_desc());
  if (block == 0 || common[1] % block != 0 || same_layout(base.get_desc(), dims) != base.get_desc()) {
    base = plan.reorder_to(base, plain_desc(dims));
  }
  const memory other = plan.reorder_to(from, same_layout(base.get_desc(), from_dims));
  const memory::desc common_md = same_layout(base.get_desc(), common);
  const memory dst = plan.new_memory(base.get_desc());
  memory src0 = base, sum = dst;
  if (from_dims[1] < dims[1]) {
    // dst = previous, then its first channels += from, in place.
    dnnl::reorder::primitive_desc copy(plan.engine(), base.get_desc(), plan.engine(), dst.get_desc(), Plan::attr());
    plan.add(dnnl::reorder(copy), {{DNNL_ARG_FROM, base}, {DNNL_ARG_TO, dst}}, copy.scratchpad_desc());
    src0 = sum = plan.new_view(dst, common_md);
  }
  const memory src1 = from_dims[1] > dims[1] ? plan.new_view(other, common_md) : other;
  dnnl::binary::desc desc(dnnl::algorithm::binary_add, src0.get_desc(), src1.get_desc(), sum.get_desc());
  dnnl::binary::primitive_desc pd(desc, Plan::attr(), plan.engine());
  plan.add(dnnl::binary(pd), {{DNNL_ARG_SRC_0, src0}, {DNNL_ARG_SRC_1, src1}, {DNNL_ARG_DST, sum}},
           pd.scratchpad_desc());
  return dst;
}

}  // namespace

memory make_shortcut(Plan& plan, const darknet::Layer& layer, const memory& previous, const memory& from) {
  memory dst;
  if (from.get_desc().dims()[1] != previous.get_desc().dims()[1]) {
    dst = partial_sum(plan, previous, from);
  } else {
    memory other = plan.reorder_to(from, previous.get_desc());
    dnnl::binary::desc desc(dnnl::algorithm::binary_add, previous.get_desc(), other.get_desc(), previous.get_desc());
    dnnl::binary::primitive_desc pd(desc, Plan::attr(), plan.engine());
    dst = plan.new_memory(pd.dst_desc());
    plan.add(dnnl::binary(pd), {{DNNL_ARG_SRC_0, previous}, {DNNL_ARG_SRC_1, other}, {DNNL_ARG_DST, dst}},
             pd.scratchpad_desc());
  }
  // The activation runs as a separate in-place eltwise, not as a binary post-op: oneDNN 2.6's
  // jit binary with an eltwise post-op corrupts memory on nChw8c under AVX-512 (layers_test).
  append_activation_in_place(plan, layer.shortcut.activation, dst);
  return dst;
}

}  // namespace clouddetect::onednn
