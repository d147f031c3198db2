#include "backends/onednn/onednn_backend.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backends/onednn/layers/convolutional.h"
#include "backends/onednn/layers/maxpool.h"
#include "backends/onednn/layers/route.h"
#include "backends/onednn/layers/shortcut.h"
#include "backends/onednn/layers/upsample.h"
#include "backends/onednn/plan.h"
#include "backends/onednn/prepared_model.h"
#include "core/error.h"

namespace clouddetect {
namespace {

using dnnl::memory;
using onednn::Plan;

std::string where(const darknet::Layer& layer) {
  return std::string("[") + darknet::to_string(layer.type) + "] layer " + std::to_string(layer.index) + " (cfg line " +
         std::to_string(layer.line) + ")";
}

// Union-find over layers whose int8 outputs share their scales: a fused shortcut's convolution,
// the shortcut and its `from` (the convolution accumulates into `from`'s storage).
class ScaleGroups {
 public:
  explicit ScaleGroups(int n) : parent_(static_cast<std::size_t>(n)) {
    for (int i = 0; i < n; ++i) parent_[static_cast<std::size_t>(i)] = i;
  }
  int find(int i) {
    while (parent(i) != i) i = parent(i) = parent(parent(i));  // path halving
    return i;
  }
  void join(int a, int b) { parent(find(a)) = find(b); }

 private:
  int& parent(int i) { return parent_[static_cast<std::size_t>(i)]; }
  std::vector<int> parent_;
};

enum class Mode { kFp32, kInt8, kCalibrate };

// Quantisation scales: one for the whole tensor, or one per channel.
using Scales = std::vector<float>;

class OnednnBackend final : public Backend {
 public:
  OnednnBackend(std::shared_ptr<const darknet::Model> model, const BackendOptions& options, Mode mode)
      : model_(std::move(model)),
        mode_(mode),
        threads_(options.threads > 0 ? options.threads : 1),
        plan_(dnnl::engine(dnnl::engine::kind::cpu, 0)) {
    check_supported(*model_);
    if (mode_ == Mode::kInt8) {
      if (!options.activation_ranges || !activation_ranges_fit(*options.activation_ranges, *model_)) {
        throw Error(ErrorCode::kInvalidArgument,
                    "native backend: int8 needs the activation ranges of " + model_->name + " (clouddetect calibrate)");
      }
      ranges_ = options.activation_ranges;
    }
    prepared_ = onednn::PreparedModel::get(model_);
    // oneDNN sizes its kernels by the OpenMP thread count at creation: set it before building.
    omp_set_num_threads(threads_);
    try {
      build();
    } catch (const dnnl::error& e) {
      throw Error(ErrorCode::kInternal, std::string("native backend: building ") + building_ + ": " + e.what());
    }
  }

  std::string_view name() const override { return "native"; }
  std::vector<std::string> kernels() const override { return plan_.implementations(); }

  void forward(const Tensor& input, std::vector<Tensor>& heads) override {
    const memory::dims& dims = input_dims_;
    if (input.shape.size() != 4 || input.shape[0] != dims[0] || input.shape[1] != dims[1] ||
        input.shape[2] != dims[2] || input.shape[3] != dims[3]) {
      throw Error(ErrorCode::kInternal, "native backend: input shape does not match the model");
    }
    heads.resize(head_memories_.size());
    for (std::size_t i = 0; i < head_memories_.size(); ++i) {
      const memory::dims head = head_memories_[i].get_desc().dims();
      if (heads[i].shape.size() != 4 || heads[i].shape[1] != head[1] || heads[i].shape[2] != head[2] ||
          heads[i].shape[3] != head[3]) {
        heads[i].reshape({1, static_cast<int>(head[1]), static_cast<int>(head[2]), static_cast<int>(head[3])});
      }
      head_memories_[i].set_data_handle(heads[i].data.data());
    }
    if (mode_ == Mode::kInt8) {
      quantise_input(input);
    } else {
      // The primitives only read the input.
      input_memory_.set_data_handle(const_cast<float*>(input.data.data()));
    }
    omp_set_num_threads(threads_);
    try {
      plan_.execute();
    } catch (const dnnl::error& e) {
      throw Error(ErrorCode::kInternal, std::string("native backend: ") + e.what());
    }
  }

  // Calibration mode only: raises the ranges of every layer's output to the largest |value| of the
  // last forward().
  // Widens `ranges` by this forward's outputs; `peaks` gets each layer's largest |value| per channel.
  void record_ranges(ActivationRanges& ranges, std::vector<std::vector<float>>& peaks) const {
    peaks.resize(outputs_.size());
    for (std::size_t i = 0; i < outputs_.size(); ++i) {
      const memory& out = outputs_[i];
      const memory::desc md = out.get_desc();
      // fp32 in nchw or a blocked layout (nChw16c...): element k is channel
      // (k / (h * w * block)) * block + k % block; the padding channels hold zeros.
      const int block = onednn::channel_block(md);
      const memory::dims dims = md.dims();
      if (block == 0 || (md != plan_.activation_desc(dims) && md != onednn::plain_desc(dims))) {
        throw Error(ErrorCode::kInternal, "native backend: cannot measure a layer output in this layout");
      }
      const std::size_t plane = static_cast<std::size_t>(dims[2] * dims[3]) * static_cast<std::size_t>(block);
      const float* data = static_cast<const float*>(out.get_data_handle());
      const std::size_t count = md.get_size() / sizeof(float);
      std::vector<float>& lowest = ranges.channel_min[i];
      std::vector<float>& highest = ranges.channel_max[i];
      std::vector<float>& peak = peaks[i];
      peak.assign(lowest.size(), 0.0f);
      for (std::size_t k = 0; k < count; ++k) {
        const std::size_t channel = k / plane * static_cast<std::size_t>(block) + k % static_cast<std::size_t>(block);
        if (channel >= lowest.size()) continue;
        lowest[channel] = std::min(lowest[channel], data[k]);
        highest[channel] = std::max(highest[channel], data[k]);
        peak[channel] = std::max(peak[channel], std::abs(data[k]));
      }
      for (std::size_t c = 0; c < lowest.size(); ++c) {
        ranges.absmax[i] = std::max({ranges.absmax[i], -lowest[c], highest[c]});
      }
    }
  }

 private:
  // int8: the fp32 planar input (values k / 255) into the u8 nhwc input memory. A plain loop:
  // oneDNN 2.6's reorder took 0.6 ms of a 7.4 ms yolov3-tiny forward, which this loop made 6.9 ms.
  void quantise_input(const Tensor& input) {
    const std::size_t channels = static_cast<std::size_t>(input_dims_[1]);
    const std::size_t pixels = static_cast<std::size_t>(input_dims_[2] * input_dims_[3]);
    auto* out = static_cast<std::uint8_t*>(input_memory_.get_data_handle());
    for (std::size_t c = 0; c < channels; ++c) {
      const float* plane = input.data.data() + c * pixels;
      for (std::size_t i = 0; i < pixels; ++i) {
        const float value = std::clamp(plane[i] * 255.0f + 0.5f, 0.0f, 255.0f);  // round half up: k/255 -> k
        out[i * channels + c] = static_cast<std::uint8_t>(value);
      }
    }
  }

  static void check_supported(const darknet::Model& model) {
    for (const darknet::Layer& layer : model.layers) {
      switch (layer.type) {
        case darknet::LayerType::kConvolutional:
        case darknet::LayerType::kMaxpool:
        case darknet::LayerType::kUpsample:
        case darknet::LayerType::kRoute:
        case darknet::LayerType::kShortcut:
        case darknet::LayerType::kDropout:
          break;
        case darknet::LayerType::kYolo:
          if (layer.index == 0)
            throw Error(ErrorCode::kInvalidArgument, "native backend: " + where(layer) + " has no input layer");
          break;
        default:
          throw Error(ErrorCode::kInvalidArgument, "native backend: unsupported layer type " +
                                                       std::to_string(static_cast<int>(layer.type)) + " at " +
                                                       model.cfg_path + ":" + std::to_string(layer.line));
      }
    }
  }

  // The layers whose outputs `layer` reads.
  static std::vector<int> inputs_of(const darknet::Layer& layer) {
    switch (layer.type) {
      case darknet::LayerType::kRoute:
        return layer.route.layers;
      case darknet::LayerType::kShortcut:
        return {layer.index - 1, layer.shortcut.from};
      default:
        return layer.index == 0 ? std::vector<int>{} : std::vector<int>{layer.index - 1};
    }
  }

  // A [shortcut] that can be fused into convolution `conv` as a sum post-op: reached from `conv`
  // through dropouts only, the sole reader of the convolution's output, and the last reader of
  // its `from` storage, which the convolution then accumulates into. -1 if none.
  int fusable_shortcut(int conv, const std::vector<std::vector<int>>& readers, const std::vector<int>& storage,
                       const std::vector<int>& last_read) const {
    const auto& layers = model_->layers;
    int k = conv;
    while (true) {
      if (readers[k].size() != 1 || readers[k][0] != k + 1) return -1;
      ++k;
      if (layers[k].type == darknet::LayerType::kShortcut) break;
      if (layers[k].type != darknet::LayerType::kDropout) return -1;
    }
    const int from = layers[k].shortcut.from;
    // The convolution must not read the storage it accumulates into.
    if (from >= conv || (conv > 0 && storage[conv - 1] == storage[from])) return -1;
    return last_read[storage[from]] == k ? k : -1;
  }

  // fp32: a [route] that concatenates whole outputs is written in place: its output is allocated
  // first and each part's producer (a convolution without fused shortcut, or an upsample) writes
  // straight into its channel range, a contiguous view in the blocked layout when every part has
  // whole channel blocks. Saves the concat copy (yolov3-tiny: 384x26x26, ~0.4 ms). Returns, per
  // layer, the memory it must write (empty: its own): the views for producers, the whole for routes.
  std::vector<memory> routes_in_place(const std::vector<int>& storage, const std::vector<int>& shortcut_of,
                                      const std::vector<bool>& feeds_head) {
    const auto& layers = model_->layers;
    auto output_desc = [&](const darknet::Layer& layer) {
      return plan_.activation_desc({1, layer.output.c, layer.output.h, layer.output.w});
    };
    std::vector<memory> into(layers.size());
    for (const darknet::Layer& layer : layers) {
      const auto& parts = layer.route.layers;
      if (layer.type != darknet::LayerType::kRoute || layer.route.groups != 1 || parts.size() < 2) continue;
      bool fits = true;
      for (int part : parts) {
        const darknet::Layer& producer = layers.at(part);
        const int block = onednn::channel_block(output_desc(producer));
        fits = fits && storage[part] == part && !into[part] && !feeds_head[part] &&
               std::count(parts.begin(), parts.end(), part) == 1 && block > 1 && producer.output.c % block == 0 &&
               ((producer.type == darknet::LayerType::kConvolutional && shortcut_of[part] < 0) ||
                producer.type == darknet::LayerType::kUpsample);
      }
      if (!fits) continue;
      const memory whole = plan_.new_memory(output_desc(layer));
      std::size_t offset = 0;
      for (int part : parts) {
        const memory::desc md = output_desc(layers[part]);
        into[part] = plan_.new_view(whole, md, offset);
        offset += md.get_size();
      }
      into[layer.index] = whole;
    }
    return into;
  }

  static const memory* target(const std::vector<memory>& into, int layer) {
    return into[static_cast<std::size_t>(layer)] ? &into[static_cast<std::size_t>(layer)] : nullptr;
  }

  // int8: the per-channel s8 scales of every layer's output: range / 127, where a channel's range
  // is the smaller of its calibration maximum and the mean + 3 standard deviations of its per-image
  // maxima: a rare outlier image no longer stretches the step of every other image (a clipped
  // percentile, without histograms). A fused shortcut accumulates into its `from` storage, so the
  // convolution, the shortcut and `from` share one set of scales, covering all of them (channel-wise max).
  //
  // yolo-fastest-1.1-xl, calibrated on the 128 coco128 images, scored on the 1000 coco-val1k images
  // (docs/PERFORMANCE.md): mAP@0.5 drop 0.0105 [0.0035, 0.0183] with the former rule (the larger of
  // the two), 0.0051 [-0.0022, 0.0132] with this one; heads' error on 16 calibration images 0.0836
  // (former), 0.0857 (maximum alone), 0.0778 (this), 0.0870 (2 deviations), 0.268 (one scale per tensor).
  // Asymmetric u8 with a zero point did not help and made yolov3-tiny 2x slower (oneDNN 2.6 leaves
  // its AMX kernels), so activations are symmetric s8.
  static constexpr float kPeakDeviations = 3.0f;

  std::vector<Scales> int8_scales(const std::vector<int>& shortcut_of) const {
    const auto& layers = model_->layers;
    const int n = static_cast<int>(layers.size());
    ScaleGroups groups(n);
    for (int conv = 0; conv < n; ++conv) {
      if (const int shortcut = shortcut_of[static_cast<std::size_t>(conv)]; shortcut >= 0) {
        for (int k = conv; k <= shortcut; ++k) groups.join(k, layers[shortcut].shortcut.from);
      }
    }
    // Each channel's range, widened to the largest over its scale group.
    std::vector<std::vector<float>> group_range(layers.size());
    for (int i = 0; i < n; ++i) {
      const auto layer = static_cast<std::size_t>(i);
      const auto& lowest = ranges_->channel_min[layer];
      const auto& highest = ranges_->channel_max[layer];
      const auto& peak_mean = ranges_->channel_peak_mean[layer];
      const auto& peak_sd = ranges_->channel_peak_sd[layer];
      auto& group = group_range[static_cast<std::size_t>(groups.find(i))];
      group.resize(std::max(group.size(), lowest.size()), 0.0f);
      for (std::size_t c = 0; c < lowest.size(); ++c) {
        group[c] =
            std::max(group[c], std::min(std::max(-lowest[c], highest[c]), peak_mean[c] + kPeakDeviations * peak_sd[c]));
      }
    }
    std::vector<Scales> scales(layers.size());
    for (int i = 0; i < n; ++i) {
      for (float range : group_range[static_cast<std::size_t>(groups.find(i))]) {
        scales[static_cast<std::size_t>(i)].push_back(range > 0 ? range / 127.0f : 1.0f);
      }
    }
    return scales;
  }

  // A tensor of the plan and how to read it: f32 holds real values, s8 (u8 for the network input)
  // q stands for q * scale of its channel.
  struct Value {
    memory data;
    Scales scales{1.0f};
    bool is_int8() const { return data.get_desc().data_type() != memory::data_type::f32; }
  };

  static Scales inverse(const Scales& scales) {
    Scales result;
    for (float scale : scales) result.push_back(1.0f / scale);
    return result;
  }

  Value to_f32(const Value& value) {
    if (!value.is_int8()) return value;
    return {plan_.convert(value.data, plan_.activation_desc(value.data.get_desc().dims()), value.scales), {1.0f}};
  }

  // An int8 value stays as it is (in nhwc); an fp32 one is quantised at `scales`.
  Value to_int8(const Value& value, const Scales& scales) {
    const memory::dims dims = value.data.get_desc().dims();
    if (value.is_int8()) {
      return {plan_.reorder_to(value.data, plan_.activation_desc(dims, value.data.get_desc().data_type())),
              value.scales};
    }
    return {plan_.convert(value.data, plan_.activation_desc(dims, memory::data_type::s8), inverse(scales)), scales};
  }

  // True when the convolution `index` (fp32) may hand its output straight to the 2x2 stride-2
  // [maxpool] after it, in one step (make_convolutional_pooled): the pool is its only reader and
  // the convolution writes a plain output of its own (no fused shortcut, head, or route view).
  bool pools_after(int index, const std::vector<std::vector<int>>& readers, const std::vector<bool>& feeds_head,
                   const std::vector<int>& shortcut_of, const std::vector<memory>& into) const {
    const auto& layers = model_->layers;
    if (mode_ != Mode::kFp32 || index + 1 >= static_cast<int>(layers.size())) return false;
    const darknet::Layer& pool = layers[index + 1];
    return pool.type == darknet::LayerType::kMaxpool && pool.maxpool.size == 2 && pool.maxpool.stride == 2 &&
           pool.input.h % 2 == 0 && pool.input.w % 2 == 0 && pool.output.h == pool.input.h / 2 &&
           pool.output.w == pool.input.w / 2 && readers[index] == std::vector<int>{index + 1} && !feeds_head[index] &&
           shortcut_of[index] < 0 && !target(into, index);
  }

  void build() {
    const auto& layers = model_->layers;
    const int n = static_cast<int>(layers.size());
    const bool int8 = mode_ == Mode::kInt8;
    // Which layers read each output, which layer's storage each output is (dropout, yolo and a
    // whole single route alias their input), and the last layer reading each storage.
    std::vector<std::vector<int>> readers(n);
    std::vector<int> storage(n), last_read(n, -1);
    for (const darknet::Layer& layer : layers) {
      for (int input : inputs_of(layer)) readers.at(input).push_back(layer.index);
      const bool alias =
          layer.type == darknet::LayerType::kDropout || layer.type == darknet::LayerType::kYolo ||
          (layer.type == darknet::LayerType::kRoute && layer.route.layers.size() == 1 && layer.route.groups == 1);
      storage[layer.index] = alias && layer.index > 0 ? storage[inputs_of(layer)[0]] : layer.index;
    }
    for (const darknet::Layer& layer : layers) {
      for (int input : inputs_of(layer)) last_read[storage[input]] = std::max(last_read[storage[input]], layer.index);
    }
    std::vector<bool> feeds_head(n, false);
    for (int yolo : model_->yolo_layers()) {
      last_read[storage[yolo - 1]] = n;  // read by the head copy
      feeds_head[storage[yolo - 1]] = true;
    }
    // Calibration measures every layer's own output: no fusion, no shared storage.
    std::vector<int> shortcut_of(n, -1);
    if (mode_ != Mode::kCalibrate) {
      for (const darknet::Layer& layer : layers) {
        if (layer.type == darknet::LayerType::kConvolutional) {
          shortcut_of[layer.index] = fusable_shortcut(layer.index, readers, storage, last_read);
        }
      }
    }
    const std::vector<Scales> scales = int8 ? int8_scales(shortcut_of) : std::vector<Scales>();
    const std::vector<memory> into =
        mode_ == Mode::kFp32 ? routes_in_place(storage, shortcut_of, feeds_head) : std::vector<memory>(layers.size());

    input_dims_ = {1, model_->channels, model_->height, model_->width};
    // int8: the input is pixel / 255, exact in u8 at scale 1/255; forward() writes it in nhwc.
    const Value network_input =
        int8 ? Value{input_memory_ = memory(plan_.activation_desc(input_dims_, memory::data_type::u8), plan_.engine()),
                     {1.0f / 255.0f}}
             : Value{input_memory_ = memory(onednn::plain_desc(input_dims_), plan_.engine(), DNNL_MEMORY_NONE), {1.0f}};
    std::vector<Value> outputs(layers.size());
    std::vector<bool> fused(layers.size(), false);
    std::vector<bool> pooled_by_previous(layers.size(), false);  // a [maxpool] done by the convolution before it
    for (const darknet::Layer& layer : layers) {
      building_ = where(layer);
      const Value& previous = layer.index == 0 ? network_input : outputs[layer.index - 1];
      Value& out = outputs[layer.index];
      switch (layer.type) {
        case darknet::LayerType::kConvolutional: {
          const auto& prepared = prepared_->convolution(layer.index);
          const int shortcut = shortcut_of[layer.index];
          const darknet::Activation after_sum =
              shortcut >= 0 ? layers[shortcut].shortcut.activation : darknet::Activation::kLinear;
          // Mixed precision: calibration may keep the convolutions int8 hurts most in fp32.
          const bool quantised = int8 && !ranges_->keeps_fp32(layer.index) &&
                                 onednn::scale_invariant(layer.convolutional.activation) &&
                                 onednn::scale_invariant(after_sum);
          const memory::dims dst_dims = {1, layer.output.c, layer.output.h, layer.output.w};
          if (quantised) {
            onednn::Int8Scales int8_scales;
            const Value src = to_int8(previous, layer.index == 0 ? previous.scales : scales[layer.index - 1]);
            int8_scales.src = src.scales;
            // Heads stay fp32 for decoding: the last convolution writes real values.
            const bool head = feeds_head[layer.index];
            int8_scales.dst_type = head ? memory::data_type::f32 : memory::data_type::s8;
            int8_scales.dst = head ? Scales{1.0f} : scales[layer.index];
            const memory::desc dst_md(dst_dims, int8_scales.dst_type, memory::format_tag::nhwc);
            const Value* from = shortcut >= 0 ? &outputs[layers[shortcut].shortcut.from] : nullptr;
            if (from && !head && from->data.get_desc() == dst_md && from->scales == int8_scales.dst) {
              fused[shortcut] = true;
              out = {onednn::make_convolutional_int8(plan_, prepared, src.data, int8_scales, &from->data, after_sum),
                     int8_scales.dst};
            } else {
              out = {onednn::make_convolutional_int8(plan_, prepared, src.data, int8_scales), int8_scales.dst};
            }
            break;
          }
          const Value src = to_f32(previous);
          const memory::desc dst_md = plan_.activation_desc(dst_dims);
          if (pools_after(layer.index, readers, feeds_head, shortcut_of, into)) {
            if (std::optional<memory> pooled = onednn::make_convolutional_pooled(plan_, prepared, src.data)) {
              pooled_by_previous[layer.index + 1] = true;
              out = {*pooled, {1.0f}};
              break;
            }
          }
          if (shortcut >= 0 && outputs[layers[shortcut].shortcut.from].data.get_desc() == dst_md) {
            fused[shortcut] = true;
            out = {onednn::make_convolutional(plan_, prepared, src.data, &outputs[layers[shortcut].shortcut.from].data,
                                              after_sum),
                   {1.0f}};
          } else {
            out = {onednn::make_convolutional(plan_, prepared, src.data, nullptr, darknet::Activation::kLinear,
                                              target(into, layer.index)),
                   {1.0f}};
          }
          break;
        }
        // Max pooling and nearest upsampling commute with a positive scale: int8 stays int8.
        case darknet::LayerType::kMaxpool:
          out = pooled_by_previous[layer.index]
                    ? previous
                    : Value{onednn::make_maxpool(plan_, layer, previous.data), previous.scales};
          break;
        case darknet::LayerType::kUpsample:
          out = {onednn::make_upsample(plan_, layer, previous.data, target(into, layer.index)), previous.scales};
          break;
        case darknet::LayerType::kRoute: {
          if (const memory* whole = target(into, layer.index)) {  // written in place by its parts
            out = {*whole, {1.0f}};
            break;
          }
          // int8 parts keep their values and per-channel scales: the output's scales are the
          // (sliced) input scales concatenated. Parts must share a type and layout.
          bool all_int8 = true;
          for (int index : layer.route.layers) {
            all_int8 = all_int8 && outputs.at(index).data.get_desc().data_type() == memory::data_type::s8;
          }
          std::vector<memory> inputs;
          Scales route_scales;
          for (int index : layer.route.layers) {
            const Value input = all_int8 ? to_int8(outputs.at(index), {}) : to_f32(outputs.at(index));
            inputs.push_back(input.data);
            if (!all_int8) continue;
            const std::size_t channels = static_cast<std::size_t>(input.data.get_desc().dims()[1]);
            const Scales full = input.scales.size() == 1 ? Scales(channels, input.scales[0]) : input.scales;
            const std::size_t part = channels / static_cast<std::size_t>(layer.route.groups);
            const auto first =
                full.begin() + static_cast<std::ptrdiff_t>(part * static_cast<std::size_t>(layer.route.group_id));
            route_scales.insert(route_scales.end(), first, first + static_cast<std::ptrdiff_t>(part));
          }
          out = {onednn::make_route(plan_, layer, inputs), all_int8 ? route_scales : Scales{1.0f}};
          break;
        }
        case darknet::LayerType::kShortcut:
          out = fused[layer.index] ? previous
                                   : Value{onednn::make_shortcut(plan_, layer, to_f32(previous).data,
                                                                 to_f32(outputs.at(layer.shortcut.from)).data),
                                           {1.0f}};
          break;
        case darknet::LayerType::kDropout:  // identity at inference
        case darknet::LayerType::kYolo:     // the head is the previous layer's output, returned raw
          out = previous;
          break;
      }
      const darknet::Shape& shape =
          layer.index + 1 < n && pooled_by_previous[layer.index + 1] ? layers[layer.index + 1].output : layer.output;
      const memory::dims expected = {1, shape.c, shape.h, shape.w};
      if (out.data.get_desc().dims() != expected) {
        throw Error(ErrorCode::kInternal, "native backend: " + building_ + " produced an unexpected shape");
      }
    }
    // Heads leave the plan once, as plain fp32, straight into the caller's tensors.
    for (int yolo : model_->yolo_layers()) {
      building_ = where(model_->layers[yolo]);
      const Value& head = outputs[yolo - 1];
      memory user(onednn::plain_desc(head.data.get_desc().dims()), plan_.engine(), DNNL_MEMORY_NONE);
      dnnl::primitive_attr attr = Plan::attr();
      if (head.scales != Scales{1.0f}) attr.set_output_scales(head.scales.size() == 1 ? 0 : 1 << 1, head.scales);
      dnnl::reorder::primitive_desc pd(plan_.engine(), head.data.get_desc(), plan_.engine(), user.get_desc(), attr);
      plan_.add(dnnl::reorder(pd), {{DNNL_ARG_FROM, head.data}, {DNNL_ARG_TO, user}}, pd.scratchpad_desc());
      head_memories_.push_back(user);
    }
    plan_.finalize(/*share_storage=*/mode_ != Mode::kCalibrate);
    if (mode_ == Mode::kCalibrate) {
      for (const Value& value : outputs) outputs_.push_back(value.data);
    }
  }

  std::shared_ptr<const darknet::Model> model_;
  std::shared_ptr<const onednn::PreparedModel> prepared_;
  std::shared_ptr<const ActivationRanges> ranges_;
  Mode mode_;
  int threads_;
  Plan plan_;
  memory::dims input_dims_;
  memory input_memory_;
  std::vector<memory> head_memories_;
  std::vector<memory> outputs_;  // calibration only: every layer's output
  std::string building_;
};

}  // namespace

std::unique_ptr<Backend> make_onednn_backend(std::shared_ptr<const darknet::Model> model,
                                             const BackendOptions& options) {
  if (options.precision != "fp32" && options.precision != "int8") {
    throw Error(ErrorCode::kInvalidArgument,
                "native backend supports precision fp32 and int8, not " + options.precision);
  }
  try {
    return std::make_unique<OnednnBackend>(std::move(model), options,
                                           options.precision == "int8" ? Mode::kInt8 : Mode::kFp32);
  } catch (const dnnl::error& e) {
    throw Error(ErrorCode::kInternal, std::string("native backend: ") + e.what());
  }
}

namespace onednn {

ActivationRanges measure_activation_ranges(std::shared_ptr<const darknet::Model> model,
                                           const std::vector<Tensor>& inputs, int threads) {
  if (inputs.empty()) throw Error(ErrorCode::kInvalidArgument, "calibration needs at least one image");
  BackendOptions options;
  options.threads = threads;
  ActivationRanges ranges;
  ranges.model = model->name;
  ranges.absmax.assign(model->layers.size(), 0.0f);
  for (const darknet::Layer& layer : model->layers) {
    ranges.channel_min.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0f);
    ranges.channel_max.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0f);
    ranges.channel_peak_mean.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0f);
    ranges.channel_peak_sd.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0f);
  }
  OnednnBackend backend(model, options, Mode::kCalibrate);
  std::vector<Tensor> heads;
  std::vector<std::vector<float>> peaks;
  // Welford's running mean and sum of squared deviations, in double: peaks of similar size would
  // lose the deviation to cancellation in float sums of squares.
  std::vector<std::vector<double>> mean, squares;
  for (const darknet::Layer& layer : model->layers) {
    mean.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0);
    squares.emplace_back(static_cast<std::size_t>(layer.output.c), 0.0);
  }
  for (const Tensor& input : inputs) {
    backend.forward(input, heads);
    backend.record_ranges(ranges, peaks);
    ++ranges.images;
    for (std::size_t i = 0; i < peaks.size(); ++i) {
      for (std::size_t c = 0; c < peaks[i].size(); ++c) {
        const double delta = peaks[i][c] - mean[i][c];
        mean[i][c] += delta / ranges.images;
        squares[i][c] += delta * (peaks[i][c] - mean[i][c]);
      }
    }
  }
  for (std::size_t i = 0; i < mean.size(); ++i) {
    for (std::size_t c = 0; c < mean[i].size(); ++c) {
      ranges.channel_peak_mean[i][c] = static_cast<float>(mean[i][c]);
      ranges.channel_peak_sd[i][c] = static_cast<float>(std::sqrt(squares[i][c] / ranges.images));
    }
  }
  return ranges;
}

}  // namespace onednn

}  // namespace clouddetect
