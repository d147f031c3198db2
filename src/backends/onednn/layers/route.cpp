#include "backends/onednn/layers/route.h"

#include <algorithm>
#include <cstring>

namespace clouddetect::onednn {

using dnnl::memory;

namespace {

// Channels [offset, offset + count) of `src`, copied into a new memory.
memory slice_channels(Plan& plan, const memory& src, memory::dim offset, memory::dim count) {
  memory source = src;
  const memory::dims dims = source.get_desc().dims();
  const memory::data_type type = source.get_desc().data_type();
  int block = channel_block(source.get_desc());
  if (block == 0 || offset % block != 0 || count % block != 0) {
    // A slice must not split a channel block: go through the plain layout.
    source = plan.reorder_to(source, plain_desc(dims, type));
    block = 1;
  }
  const memory::dims slice_dims = {dims[0], count, dims[2], dims[3]};
  memory::desc view = source.get_desc().submemory_desc(slice_dims, {0, offset, 0, 0});
  // The slice keeps the source's layout, densely.
  memory::format_tag tag = memory::format_tag::nchw;
  if (block == 16) tag = memory::format_tag::nChw16c;
  if (block == 8) tag = memory::format_tag::nChw8c;
  if (block == 4) tag = memory::format_tag::nChw4c;
  if (block == 1 && memory::desc(dims, type, memory::format_tag::nhwc) == source.get_desc())
    tag = memory::format_tag::nhwc;
  const memory::desc dense(slice_dims, type, tag);
  memory target = plan.new_memory(dense);
  dnnl::reorder::primitive_desc pd(plan.engine(), view, plan.engine(), dense, Plan::attr());
  // The view shares the source's storage; the channel offset is in its desc.
  memory source_view = plan.new_view(source, view);
  plan.add(dnnl::reorder(pd), {{DNNL_ARG_FROM, source_view}, {DNNL_ARG_TO, target}}, pd.scratchpad_desc());
  return target;
}

// True when every part is in the plan's blocked fp32 layout (nChw8c or nChw16c, one image) with
// whole channel blocks: there the concatenation is each part's storage copied after the previous.
bool concatenates_by_copy(const Plan& plan, const std::vector<memory>& parts) {
  return std::all_of(parts.begin(), parts.end(), [&](const memory& part) {
    const memory::desc md = part.get_desc();
    const memory::dims dims = md.dims();
    const int block = channel_block(md);
    return dims[0] == 1 && block > 1 && dims[1] % block == 0 && md == plan.activation_desc(dims);
  });
}

// The concatenation as one copy per part: oneDNN 2.6 runs its generic simple:any concat here,
// several times slower (docs/PERFORMANCE.md, "Blocks of tile rows, and concatenations as copies").
memory concatenate_by_copy(Plan& plan, const std::vector<memory>& parts) {
  memory::dims dims = parts.front().get_desc().dims();
  dims[1] = 0;
  for (const memory& part : parts) dims[1] += part.get_desc().dims()[1];
  const memory dst = plan.new_memory(plan.activation_desc(dims));
  std::vector<memory> uses = parts;
  uses.push_back(dst);
  plan.add_own(
      "clouddetect:concat",
      [parts, dst] {
        auto* out = static_cast<char*>(dst.get_data_handle());
        for (const memory& part : parts) {
          const std::size_t bytes = part.get_desc().get_size();
          std::memcpy(out, part.get_data_handle(), bytes);
          out += bytes;
        }
      },
      uses);
  return dst;
}

}  // namespace

memory make_route(Plan& plan, const darknet::Layer& layer, const std::vector<memory>& inputs) {
  const auto& p = layer.route;
  std::vector<memory> parts;
  for (const memory& input : inputs) {
    if (p.groups == 1) {
      parts.push_back(input);
      continue;
    }
    const memory::dim channels = input.get_desc().dims()[1] / p.groups;
    parts.push_back(slice_channels(plan, input, channels * p.group_id, channels));
  }
  if (parts.size() == 1) return parts.front();
  if (concatenates_by_copy(plan, parts)) return concatenate_by_copy(plan, parts);

  std::vector<memory::desc> descs;
  for (const memory& part : parts) descs.push_back(part.get_desc());
  dnnl::concat::primitive_desc pd(1, descs, plan.engine(), Plan::attr());
  memory dst = plan.new_memory(pd.dst_desc());
  std::unordered_map<int, memory> args{{DNNL_ARG_DST, dst}};
  for (std::size_t i = 0; i < parts.size(); ++i) args[DNNL_ARG_MULTIPLE_SRC + static_cast<int>(i)] = parts[i];
  plan.add(dnnl::concat(pd), std::move(args), pd.scratchpad_desc());
  return dst;
}

}  // namespace clouddetect::onednn
