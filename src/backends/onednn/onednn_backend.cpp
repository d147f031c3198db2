#include "backends/onednn/onednn_backend.h"

#include <algorithm>
#include <string>

#include <omp.h>

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
  return std::string("[") + darknet::to_string(layer.type) + "] layer " + std::to_string(layer.index) +
         " (cfg line " + std::to_string(layer.line) + ")";
}

class OnednnBackend final : public Backend {
 public:
  OnednnBackend(std::shared_ptr<const darknet::Model> model, const BackendOptions& options)
      : model_(std::move(model)), threads_(options.threads > 0 ? options.threads : 1), plan_(dnnl::engine(dnnl::engine::kind::cpu, 0)) {
    check_supported(*model_);
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
    // The primitives only read the input.
    input_memory_.set_data_handle(const_cast<float*>(input.data.data()));
    omp_set_num_threads(threads_);
    try {
      plan_.execute();
    } catch (const dnnl::error& e) {
      throw Error(ErrorCode::kInternal, std::string("native backend: ") + e.what());
    }
  }

 private:
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
          if (layer.index == 0) throw Error(ErrorCode::kInvalidArgument, "native backend: " + where(layer) + " has no input layer");
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
      case darknet::LayerType::kRoute: return layer.route.layers;
      case darknet::LayerType::kShortcut: return {layer.index - 1, layer.shortcut.from};
      default: return layer.index == 0 ? std::vector<int>{} : std::vector<int>{layer.index - 1};
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

  void build() {
    const auto& layers = model_->layers;
    const int n = static_cast<int>(layers.size());
    // Which layers read each output, which layer's storage each output is (dropout, yolo and a
    // whole single route alias their input), and the last layer reading each storage.
    std::vector<std::vector<int>> readers(n);
    std::vector<int> storage(n), last_read(n, -1);
    for (const darknet::Layer& layer : layers) {
      for (int input : inputs_of(layer)) readers.at(input).push_back(layer.index);
      const bool alias = layer.type == darknet::LayerType::kDropout || layer.type == darknet::LayerType::kYolo ||
                         (layer.type == darknet::LayerType::kRoute && layer.route.layers.size() == 1 &&
                          layer.route.groups == 1);
      storage[layer.index] = alias && layer.index > 0 ? storage[inputs_of(layer)[0]] : layer.index;
    }
    for (const darknet::Layer& layer : layers) {
      for (int input : inputs_of(layer)) last_read[storage[input]] = std::max(last_read[storage[input]], layer.index);
    }
    for (int yolo : model_->yolo_layers()) last_read[storage[yolo - 1]] = n;  // read by the head copy

    input_dims_ = {1, model_->channels, model_->height, model_->width};
    input_memory_ = memory(onednn::plain_desc(input_dims_), plan_.engine(), DNNL_MEMORY_NONE);
    std::vector<memory> outputs(layers.size());
    std::vector<bool> fused(layers.size(), false);
    for (const darknet::Layer& layer : layers) {
      building_ = where(layer);
      const memory& previous = layer.index == 0 ? input_memory_ : outputs[layer.index - 1];
      memory& out = outputs[layer.index];
      switch (layer.type) {
        case darknet::LayerType::kConvolutional: {
          const int shortcut = fusable_shortcut(layer.index, readers, storage, last_read);
          const memory::desc dst_md = plan_.activation_desc({1, layer.output.c, layer.output.h, layer.output.w});
          if (shortcut >= 0 && outputs[layers[shortcut].shortcut.from].get_desc() == dst_md) {
            fused[shortcut] = true;
            out = onednn::make_convolutional(plan_, prepared_->convolution(layer.index), previous,
                                             &outputs[layers[shortcut].shortcut.from],
                                             layers[shortcut].shortcut.activation);
          } else {
            out = onednn::make_convolutional(plan_, prepared_->convolution(layer.index), previous);
          }
          break;
        }
        case darknet::LayerType::kMaxpool: out = onednn::make_maxpool(plan_, layer, previous); break;
        case darknet::LayerType::kUpsample: out = onednn::make_upsample(plan_, layer, previous); break;
        case darknet::LayerType::kRoute: {
          std::vector<memory> inputs;
          for (int index : layer.route.layers) inputs.push_back(outputs.at(index));
          out = onednn::make_route(plan_, layer, inputs);
          break;
        }
        case darknet::LayerType::kShortcut:
          out = fused[layer.index] ? previous
                                   : onednn::make_shortcut(plan_, layer, previous, outputs.at(layer.shortcut.from));
          break;
        case darknet::LayerType::kDropout:  // identity at inference
        case darknet::LayerType::kYolo:     // the head is the previous layer's output, returned raw
          out = previous;
          break;
      }
      const memory::dims expected = {1, layer.output.c, layer.output.h, layer.output.w};
      if (out.get_desc().dims() != expected) {
        throw Error(ErrorCode::kInternal, "native backend: " + building_ + " produced an unexpected shape");
      }
    }
    // Heads leave the blocked layout once, straight into the caller's tensors.
    for (int yolo : model_->yolo_layers()) {
      building_ = where(model_->layers[yolo]);
      const memory& head = outputs[yolo - 1];
      memory user(onednn::plain_desc(head.get_desc().dims()), plan_.engine(), DNNL_MEMORY_NONE);
      dnnl::reorder::primitive_desc pd(plan_.engine(), head.get_desc(), plan_.engine(), user.get_desc(), Plan::attr());
      plan_.add(dnnl::reorder(pd), {{DNNL_ARG_FROM, head}, {DNNL_ARG_TO, user}}, pd.scratchpad_desc());
      head_memories_.push_back(user);
    }
    plan_.finalize();
  }

  std::shared_ptr<const darknet::Model> model_;
  std::shared_ptr<const onednn::PreparedModel> prepared_;
  int threads_;
  Plan plan_;
  memory::dims input_dims_;
  memory input_memory_;
  std::vector<memory> head_memories_;
  std::string building_;
};

}  // namespace

std::unique_ptr<Backend> make_onednn_backend(std::shared_ptr<const darknet::Model> model,
                                             const BackendOptions& options) {
  if (options.precision != "fp32") {
    throw Error(ErrorCode::kInvalidArgument, "native backend supports precision fp32, not " + options.precision);
  }
  try {
    return std::make_unique<OnednnBackend>(std::move(model), options);
  } catch (const dnnl::error& e) {
    throw Error(ErrorCode::kInternal, std::string("native backend: ") + e.what());
  }
}

}  // namespace clouddetect
