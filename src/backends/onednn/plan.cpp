#include "backends/onednn/plan.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

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

Plan::Plan(dnnl::engine engine, memory::format_tag activation_tag)
    : engine_(std::move(engine)),
      stream_(engine_),
      activation_tag_(activation_tag == memory::format_tag::undef ? preferred_activation_tag() : activation_tag) {
  const char* profile = std::getenv("CLOUDDETECT_PROFILE_STEPS");
  profile_ = profile && std::strcmp(profile, "1") == 0;
}

Plan::~Plan() {
  if (!profile_ || profiled_runs_ == 0 || step_ms_.size() != steps_.size()) return;
  const std::vector<std::string> names = implementations();
  double total = 0;
  std::fprintf(stderr, "plan: %zu steps, mean wall ms over %d runs after the first\n", steps_.size(), profiled_runs_);
  for (std::size_t s = 0; s < steps_.size(); ++s) {
    const double ms = step_ms_[s] / profiled_runs_;
    total += ms;
    std::fprintf(stderr, "  %3zu %8.3f  %s\n", s, ms, names[s].c_str());
  }
  std::fprintf(stderr, "  total %8.3f\n", total);
}

dnnl::primitive_attr Plan::attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

memory Plan::new_memory(const memory::desc& md) {
  memory result(md, engine_, DNNL_MEMORY_NONE);
  buffers_.push_back({result, -1, 0});
  return result;
}

memory Plan::new_view(const memory& source, const memory::desc& md, std::size_t byte_offset) {
  memory result(md, engine_, DNNL_MEMORY_NONE);
  for (std::size_t i = 0; i < buffers_.size(); ++i) {
    if (buffers_[i].memory.get() == source.get()) {
      buffers_.push_back({result, static_cast<int>(i), byte_offset});
      return result;
    }
  }
  // External storage, already assigned.
  result.set_data_handle(static_cast<char*>(source.get_data_handle()) + byte_offset);
  return result;
}

void Plan::add(const dnnl::primitive& primitive, std::unordered_map<int, memory> args, const memory::desc& scratchpad) {
  Step step;
  step.primitive = primitive;
  step.args = std::move(args);
  step.uses_scratchpad = scratchpad.get_size() > 0;
  scratchpad_bytes_ = std::max(scratchpad_bytes_, scratchpad.get_size());
  steps_.push_back(std::move(step));
}

void Plan::add_own(std::string name, std::function<void()> run, const std::vector<memory>& uses) {
  add_own(
      std::move(name), [run = std::move(run)](const memory&) { run(); }, uses, memory::desc());
}

void Plan::add_own(std::string name, std::function<void(const memory& scratchpad)> run, const std::vector<memory>& uses,
                   const memory::desc& scratchpad) {
  Step step;
  for (std::size_t i = 0; i < uses.size(); ++i) step.args[static_cast<int>(i)] = uses[i];
  step.own = std::move(run);
  step.own_name = std::move(name);
  scratchpad_bytes_ = std::max(scratchpad_bytes_, scratchpad.get_size());
  steps_.push_back(std::move(step));
}

memory Plan::reorder_to(const memory& source, const memory::desc& md) { return convert(source, md, {1.0f}); }

memory Plan::convert(const memory& source, const memory::desc& md, const std::vector<float>& scales,
                     int from_zero_point, int to_zero_point) {
  const bool unscaled = scales.size() == 1 && scales[0] == 1.0f;
  if (source.get_desc() == md && unscaled && from_zero_point == to_zero_point) return source;
  memory target = new_memory(md);
  dnnl::primitive_attr reorder_attr = attr();
  if (!unscaled) reorder_attr.set_output_scales(scales.size() == 1 ? 0 : 1 << 1, scales);
  if (from_zero_point != 0) reorder_attr.set_zero_points(DNNL_ARG_FROM, 0, {from_zero_point});
  if (to_zero_point != 0) reorder_attr.set_zero_points(DNNL_ARG_TO, 0, {to_zero_point});
  dnnl::reorder::primitive_desc pd(engine_, source.get_desc(), engine_, md, reorder_attr);
  add(dnnl::reorder(pd), {{DNNL_ARG_FROM, source}, {DNNL_ARG_TO, target}}, pd.scratchpad_desc());
  return target;
}

namespace {

constexpr std::size_t kAlign = 64;

std::size_t aligned_size(const memory& m) { return (m.get_desc().get_size() + kAlign - 1) / kAlign * kAlign; }

// Blocked buffers with padded channels get storage of their own: oneDNN zero-fills the padding
// once when the storage is attached and kernels rely on it staying zero.
bool padded(const memory::desc& md) {
  std::size_t elements = 1;
  for (memory::dim d : md.dims()) elements *= static_cast<std::size_t>(d);
  return md.get_size() != elements * dnnl_data_type_size(static_cast<dnnl_data_type_t>(md.data_type()));
}

}  // namespace

void Plan::find_lifetimes(std::vector<int>& first, std::vector<int>& last) const {
  const int n = static_cast<int>(buffers_.size());
  auto root = [&](int i) {
    while (buffers_[i].parent >= 0) i = buffers_[i].parent;
    return i;
  };
  first.assign(n, -1);
  last.assign(n, -1);
  for (int s = 0; s < static_cast<int>(steps_.size()); ++s) {
    for (const auto& [arg, mem] : steps_[s].args) {
      for (int i = 0; i < n; ++i) {
        if (buffers_[i].memory.get() != mem.get()) continue;
        const int r = root(i);
        if (first[r] < 0) first[r] = s;
        last[r] = s;
      }
    }
  }
}

std::vector<int> Plan::place_buffers(bool share_storage) {
  std::vector<int> first, last;
  find_lifetimes(first, last);
  const int n = static_cast<int>(buffers_.size());
  std::vector<int> order;
  for (int i = 0; i < n; ++i) {
    if (buffers_[i].parent < 0) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return buffers_[a].memory.get_desc().get_size() > buffers_[b].memory.get_desc().get_size();
  });
  auto shares = [&](int i) { return share_storage && !padded(buffers_[i].memory.get_desc()) && first[i] >= 0; };
  std::vector<int> placed;
  std::size_t total = 0;
  for (int i : order) {
    const std::size_t size = aligned_size(buffers_[i].memory);
    std::size_t offset = 0;
    if (shares(i)) {
      std::vector<std::pair<std::size_t, std::size_t>> busy;
      for (int j : placed) {
        const bool overlap = !(last[j] < first[i] || last[i] < first[j]);
        if (overlap || !shares(j))
          busy.emplace_back(buffers_[j].offset, buffers_[j].offset + aligned_size(buffers_[j].memory));
      }
      std::sort(busy.begin(), busy.end());
      for (const auto& [begin, end] : busy) {
        if (offset + size <= begin) break;
        offset = std::max(offset, end);
      }
    } else {
      offset = total;
    }
    buffers_[i].offset = offset;
    total = std::max(total, offset + size);
    placed.push_back(i);
  }
  arena_bytes_ = total;
  return order;
}

void Plan::finalize(bool share_storage) {
  // Greedy placement, largest first, at the lowest offset free during the whole lifetime (the
  // first to the last step that uses the buffer or one of its views).
  const std::vector<int> roots = place_buffers(share_storage);
  arena_.reset(std::aligned_alloc(kAlign, std::max<std::size_t>(arena_bytes_, kAlign)), std::free);
  if (!arena_) throw std::bad_alloc();
  char* base = static_cast<char*>(arena_.get());
  for (int i : roots) buffers_[i].memory.set_data_handle(base + buffers_[i].offset);
  for (std::size_t i = 0; i < buffers_.size(); ++i) {
    if (buffers_[i].parent < 0) continue;
    std::size_t offset = 0;  // the sum of the offsets up to the root
    int j = static_cast<int>(i);
    for (; buffers_[j].parent >= 0; j = buffers_[j].parent) offset += buffers_[j].offset;
    buffers_[i].memory.set_data_handle(base + buffers_[j].offset + offset);
  }

  scratchpad_ = memory(memory::desc({static_cast<memory::dim>(std::max<std::size_t>(scratchpad_bytes_, 1))},
                                    memory::data_type::u8, memory::format_tag::x),
                       engine_);
  for (Step& step : steps_) {
    if (step.own) continue;
    if (step.uses_scratchpad) step.args[DNNL_ARG_SCRATCHPAD] = scratchpad_;
    step.c_args.clear();
    for (const auto& [arg, mem] : step.args) step.c_args.push_back({arg, mem.get()});
  }
}

void Plan::run(const Step& step) {
  if (step.own) {
    stream_.wait();  // the steps before have written what it reads
    step.own(scratchpad_);
    return;
  }
  dnnl::error::wrap_c_api(dnnl_primitive_execute(step.primitive.get(), stream_.get(),
                                                 static_cast<int>(step.c_args.size()), step.c_args.data()),
                          "could not execute a primitive");
}

void Plan::execute() {
  if (!profile_) {
    for (const Step& step : steps_) run(step);
    stream_.wait();
    return;
  }
  // The first run is left out: it pays for page faults and the kernels' lazy set-up, which a
  // mean over a few runs would spread over every step that has them.
  if (!profile_warm_) {
    for (const Step& step : steps_) run(step);
    stream_.wait();
    profile_warm_ = true;
    return;
  }
  step_ms_.resize(steps_.size());
  for (std::size_t s = 0; s < steps_.size(); ++s) {
    const auto start = std::chrono::steady_clock::now();
    run(steps_[s]);
    stream_.wait();
    step_ms_[s] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  ++profiled_runs_;
}

std::vector<std::string> Plan::implementations() const {
  std::vector<std::string> names;
  for (const Step& step : steps_) {
    if (step.own) {
      names.push_back(step.own_name);
      continue;
    }
    const char* name = nullptr;
    dnnl::error::wrap_c_api(
        dnnl_primitive_desc_query(step.primitive.get_primitive_desc(), dnnl_query_impl_info_str, 0, &name),
        "could not query a primitive's implementation");
    names.emplace_back(name ? name : "");
  }
  return names;
}

memory::desc plain_desc(const memory::dims& dims, memory::data_type type) {
  using tag = memory::format_tag;
  static const tag by_rank[] = {tag::undef, tag::a, tag::ab, tag::abc, tag::abcd, tag::abcde};
  return memory::desc(dims, type, by_rank[dims.size()]);
}

memory::desc any_desc(const memory::dims& dims, memory::data_type type) {
  return memory::desc(dims, type, memory::format_tag::any);
}

int channel_block(const memory::desc& md) {
  using tag = memory::format_tag;
  const memory::dims dims = md.dims();
  if (dims.size() != 4) return 0;
  const std::pair<tag, int> candidates[] = {
      {tag::nChw16c, 16}, {tag::nChw8c, 8}, {tag::nChw4c, 4}, {tag::nchw, 1}, {tag::nhwc, 1}};
  for (const auto& [format, block] : candidates) {
    if (memory::desc(dims, md.data_type(), format) == md) return block;
  }
  return 0;
}

bool cpu_has(dnnl_cpu_isa_t features) {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  return (isa & static_cast<unsigned>(features)) == static_cast<unsigned>(features);
}

}  // namespace clouddetect::onednn
