#include "backends/onednn/onednn_backend.h"

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

  void build() {
    input_dims_ = {1, model_->channels, model_->height, model_->width};
    input_memory_ = memory(onednn::plain_desc(input_dims_), plan_.engine(), DNNL_MEMORY_NONE);
    std::vector<memory> outputs(model_->layers.size());
    for (const darknet::Layer& layer : model_->layers) {
      building_ = where(layer);
      const memory& previous = layer.index == 0 ? input_memory_ : outputs[layer.index - 1];
      memory& out = outputs[layer.index];
      switch (layer.type) {
        case darknet::LayerType::kConvolutional:
          out = onednn::make_convolutional(plan_, prepared_->convolution(layer.index), previous);
          break;
        case darknet::LayerType::kMaxpool: out = onednn::make_maxpool(plan_, layer, previous); break;
        case darknet::LayerType::kUpsample: out = onednn::make_upsample(plan_, layer, previous); break;
        case darknet::LayerType::kRoute: {
          std::vector<memory> inputs;
          for (int index : layer.route.layers) inputs.push_back(outputs.at(index));
          out = onednn::make_route(plan_, layer, inputs);
          break;
        }
        case darknet::LayerType::kShortcut:
          out = onednn::make_shortcut(plan_, layer, previous, outputs.at(layer.shortcut.from));
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
