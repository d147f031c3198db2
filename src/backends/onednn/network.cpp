#include "backends/onednn/network.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "backends/onednn/emitters.h"
#include "backends/onednn/int8_scales.h"
#include "core/error.h"

namespace clouddetect::onednn {

using dnnl::memory;

namespace {

void check_supported(const darknet::Model& model) {
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

}  // namespace

Network::Network(std::shared_ptr<const darknet::Model> model, int threads, Mode mode,
                 std::shared_ptr<const ActivationRanges> ranges)
    : model_(std::move(model)),
      mode_(mode),
      threads_(threads > 0 ? threads : 1),
      plan_(dnnl::engine(dnnl::engine::kind::cpu, 0)) {
  check_supported(*model_);
  if (mode_ == Mode::kInt8 && (!ranges || !activation_ranges_fit(*ranges, *model_))) {
    throw Error(ErrorCode::kInvalidArgument,
                "native backend: int8 needs the activation ranges of " + model_->name + " (clouddetect calibrate)");
  }
  prepared_ = PreparedModel::get(model_);
  // oneDNN sizes its kernels by the OpenMP thread count at creation: set it before building.
  omp_set_num_threads(threads_);
  try {
    build(ranges.get());
  } catch (const dnnl::error& e) {
    throw Error(ErrorCode::kInternal, std::string("native backend: building ") + building_ + ": " + e.what());
  }
}

void Network::build(const ActivationRanges* ranges) {
  const darknet::Model& model = *model_;
  const bool int8 = mode_ == Mode::kInt8;
  const GraphAnalysis graph = analyse_graph(model, mode_, channel_block(plan_.activation_desc({1, 1, 1, 1})));
  std::vector<Quantisation> quantisations =
      int8 ? int8_quantisations(model, *ranges, graph.shortcut_of) : std::vector<Quantisation>();
  std::vector<bool> keep_fp32(model.layers.size(), false);
  for (const darknet::Layer& layer : model.layers) keep_fp32[layer.index] = int8 && ranges->keeps_fp32(layer.index);
  input_dims_ = {1, model.channels, model.height, model.width};
  // int8: the input is pixel / 255, exact in u8 at scale 1/255; forward() writes it in nhwc.
  input_memory_ = int8 ? memory(plan_.activation_desc(input_dims_, memory::data_type::u8), plan_.engine())
                       : memory(plain_desc(input_dims_), plan_.engine(), DNNL_MEMORY_NONE);
  Emitter emitter(plan_, model, *prepared_, graph, mode_, std::move(quantisations),
                  int8 ? ranges->channel_mean : std::vector<std::vector<float>>(), std::move(keep_fp32),
                  {input_memory_, {int8 ? 1.0f / 255.0f : 1.0f}});
  for (const darknet::Layer& layer : model.layers) {
    building_ = where(layer);
    emitter.emit(layer);
  }
  building_ = "the heads";
  head_memories_ = emitter.emit_heads();
  plan_.finalize(/*share_storage=*/mode_ != Mode::kCalibrate);
  if (mode_ == Mode::kCalibrate) {
    for (const Value& value : emitter.outputs()) layer_outputs_.push_back(value.data);
  }
}

void Network::forward(const Tensor& input, std::vector<Tensor>& heads) {
  const memory::dims& dims = input_dims_;
  if (input.shape.size() != 4 || input.shape[0] != dims[0] || input.shape[1] != dims[1] || input.shape[2] != dims[2] ||
      input.shape[3] != dims[3]) {
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

// int8: the fp32 planar input (values k / 255) into the u8 nhwc input memory. A plain loop: faster
// than oneDNN 2.6's reorder (docs/PERFORMANCE.md).
void Network::quantise_input(const Tensor& input) {
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

}  // namespace clouddetect::onednn
