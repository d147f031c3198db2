// A Plan is the executable form of a network on one engine: an ordered list of oneDNN
// primitives with their argument memories, built once by the layer builders (layers/*.h) and
// executed per forward with no allocation: arguments are pre-converted for the C API, every
// primitive shares one user-managed scratchpad, and activations whose lifetimes (first to last
// step using them) do not overlap share one arena.
//
// Threading: a Plan belongs to one backend instance; execute() must not run concurrently.
#pragma once

#include <functional>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace clouddetect::onednn {

class Plan {
 public:
  // `activation_tag`: format_tag::undef picks the CPU's blocked layout (see activation_desc).
  explicit Plan(dnnl::engine engine, dnnl::memory::format_tag activation_tag = dnnl::memory::format_tag::undef);
  // With CLOUDDETECT_PROFILE_STEPS=1 in the environment, prints each step's mean wall ms to stderr.
  ~Plan();
  Plan(Plan&&) = default;
  Plan& operator=(Plan&&) = default;

  const dnnl::engine& engine() const { return engine_; }

  // fp32 activations use the blocked layout of this CPU: nChw16c with AVX-512, nChw8c below
  // (faster than the nhwc layout oneDNN 2.6 picks for format_tag::any). 8-bit activations use
  // nhwc, the layout oneDNN's int8 kernels are written for.
  dnnl::memory::desc activation_desc(const dnnl::memory::dims& dims,
                                     dnnl::memory::data_type type = dnnl::memory::data_type::f32) const {
    return dnnl::memory::desc(dims, type,
                              type == dnnl::memory::data_type::f32 ? activation_tag_ : dnnl::memory::format_tag::nhwc);
  }
  dnnl::stream& stream() { return stream_; }

  // Attributes every builder starts from: user scratchpad, so the plan owns one shared buffer.
  static dnnl::primitive_attr attr();

  // A new activation buffer. Its storage is assigned by finalize() (read no data before that).
  dnnl::memory new_memory(const dnnl::memory::desc& md);
  // A view (e.g. a submemory_desc) of `source`'s storage, `source` from new_memory or external,
  // starting `byte_offset` bytes in.
  dnnl::memory new_view(const dnnl::memory& source, const dnnl::memory::desc& md, std::size_t byte_offset = 0);

  // Appends a step; `scratchpad` is the primitive descriptor's scratchpad_desc().
  void add(const dnnl::primitive& primitive, std::unordered_map<int, dnnl::memory> args,
           const dnnl::memory::desc& scratchpad);

  // Appends a step of our own code (where oneDNN has no primitive for this CPU), named `name` in
  // implementations(). `uses` are the memories it reads or writes, for storage lifetimes: `run`
  // must take their data handles at call time (storage is assigned by finalize()).
  void add_own(std::string name, std::function<void()> run, const std::vector<dnnl::memory>& uses);
  // The same for a step that executes primitives of its own (e.g. a matmul per block): `run` gets
  // the plan's shared scratchpad, at least `scratchpad.get_size()` bytes. (A scratchpad of the
  // step's own would be one more cold buffer per layer.)
  void add_own(std::string name, std::function<void(const dnnl::memory& scratchpad)> run,
               const std::vector<dnnl::memory>& uses, const dnnl::memory::desc& scratchpad);

  // `memory` itself when it already has layout `md`, else a new memory filled by an appended reorder.
  dnnl::memory reorder_to(const dnnl::memory& memory, const dnnl::memory::desc& md);
  // Requantisation: a memory of layout `md` holding (`memory`'s values - `from_zero_point`) times
  // `scales` (one, or one per channel) + `to_zero_point`, rounded and saturated for integer types;
  // `memory` itself when nothing changes.
  dnnl::memory convert(const dnnl::memory& memory, const dnnl::memory::desc& md, const std::vector<float>& scales,
                       int from_zero_point = 0, int to_zero_point = 0);

  // Keeps an object alive as long as the plan (e.g. shared weights referenced by a memory).
  void keep(std::shared_ptr<const void> object) { kept_.push_back(std::move(object)); }

  // Assigns activation storage from the arena and allocates the shared scratchpad; call once
  // after the last add(). Without `share_storage` every buffer keeps its own storage, so every
  // intermediate result can be read after execute() (calibration).
  void finalize(bool share_storage = true);

  // Runs every step in order on stream() and waits. With CLOUDDETECT_PROFILE_STEPS=1, waits after
  // each step and adds its wall time to a per-step total (our own steps are invisible to ONEDNN_VERBOSE).
  void execute();

  std::size_t num_steps() const { return steps_.size(); }
  // oneDNN's name of the implementation behind each step, e.g. "jit_wino_4x3:avx512_core".
  std::vector<std::string> implementations() const;
  std::size_t scratchpad_bytes() const { return scratchpad_bytes_; }
  std::size_t arena_bytes() const { return arena_bytes_; }

 private:
  struct Step {
    dnnl::primitive primitive;                   // empty for a step of our own
    std::unordered_map<int, dnnl::memory> args;  // owns the memories c_args point into
    std::vector<dnnl_exec_arg_t> c_args;
    bool uses_scratchpad = false;
    std::function<void(const dnnl::memory& scratchpad)> own;
    std::string own_name;
  };

  dnnl::engine engine_;
  dnnl::stream stream_;
  dnnl::memory::format_tag activation_tag_;
  struct Buffer {
    dnnl::memory memory;
    int parent = -1;         // a view of buffers_[parent]
    std::size_t offset = 0;  // in the arena (a root), or in its parent (a view)
  };

  void run(const Step& step);
  // Per root buffer, the first and last step using it or one of its views (-1: none).
  void find_lifetimes(std::vector<int>& first, std::vector<int>& last) const;
  // Sets every root buffer's arena offset and arena_bytes_; returns the roots.
  std::vector<int> place_buffers(bool share_storage);

  std::vector<Step> steps_;
  std::vector<Buffer> buffers_;
  std::shared_ptr<void> arena_;
  std::size_t arena_bytes_ = 0;
  std::vector<std::shared_ptr<const void>> kept_;
  std::size_t scratchpad_bytes_ = 0;
  dnnl::memory scratchpad_;
  bool profile_ = false;
  bool profile_warm_ = false;
  std::vector<double> step_ms_;
  int profiled_runs_ = 0;
};

// Layout helpers shared by the builders.
// nchw / x / oihw... by rank
dnnl::memory::desc plain_desc(const dnnl::memory::dims& dims,
                              dnnl::memory::data_type type = dnnl::memory::data_type::f32);
dnnl::memory::desc any_desc(const dnnl::memory::dims& dims,
                            dnnl::memory::data_type type = dnnl::memory::data_type::f32);
// The channel block of an activation layout (16 for nChw16c, 1 for nchw/nhwc), 0 if unknown.
int channel_block(const dnnl::memory::desc& md);

// Whether oneDNN's effective ISA (capped by ONEDNN_MAX_CPU_ISA) has all of `features` (its ISA
// values are feature bit masks: avx2_vnni is numerically above the AVX-512 ones).
bool cpu_has(dnnl_cpu_isa_t features);

}  // namespace clouddetect::onednn
