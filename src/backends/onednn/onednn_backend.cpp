#include "backends/onednn/onednn_backend.h"

#include <string>

#include "backends/onednn/layers/convolutional.h"
#include "backends/onednn/network.h"
#include "core/error.h"

namespace clouddetect {
namespace {

class OnednnBackend final : public Backend {
 public:
  OnednnBackend(std::shared_ptr<const darknet::Model> model, const BackendOptions& options)
      : network_(std::move(model), options.threads,
                 options.precision == Precision::kInt8 ? onednn::Mode::kInt8 : onednn::Mode::kFp32,
                 options.activation_ranges) {}

  std::string_view name() const override { return "native"; }
  std::vector<std::string> kernels() const override { return network_.plan().implementations(); }
  void forward(const Tensor& input, std::vector<Tensor>& heads) override { network_.forward(input, heads); }

 private:
  onednn::Network network_;
};

}  // namespace

std::int64_t onednn_weights_bytes(const darknet::Model& model, Precision precision, int instances) {
  (void)instances;  // one PreparedModel for all, one layout per layer
  std::int64_t values = 0;
  for (const darknet::Layer& layer : model.layers) {
    if (layer.type != darknet::LayerType::kConvolutional) continue;
    values += onednn::prepared_weight_values_bound(layer, precision == Precision::kInt8);
  }
  return values * static_cast<std::int64_t>(sizeof(float));
}

std::unique_ptr<Backend> make_onednn_backend(std::shared_ptr<const darknet::Model> model,
                                             const BackendOptions& options) {
  try {
    return std::make_unique<OnednnBackend>(std::move(model), options);
  } catch (const dnnl::error& e) {
    throw Error(ErrorCode::kInternal, std::string("native backend: ") + e.what());
  }
}

}  // namespace clouddetect
