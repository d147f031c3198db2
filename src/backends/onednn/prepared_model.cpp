#include "backends/onednn/prepared_model.h"

#include <cstdlib>

#include "backends/onednn/layers/convolutional.h"
#include "backends/onednn/plan.h"

namespace clouddetect::onednn {

PreparedConvolution::PreparedConvolution(const darknet::Layer& layer) : layer_(&layer) {
  bias_ = fold_batch_norm_bias(layer);
}

std::shared_ptr<const float> PreparedConvolution::weights(const dnnl::memory::desc& md, const dnnl::engine& engine,
                                                          dnnl::stream& stream) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [layout, buffer] : layouts_) {
    if (layout == md) return buffer;
  }
  // Folded plain weights exist only while reordering: the darknet model keeps the originals.
  std::vector<float> plain = fold_batch_norm_weights(*layer_);
  const std::size_t bytes = (md.get_size() + 63) / 64 * 64;
  std::shared_ptr<float> buffer(static_cast<float*>(std::aligned_alloc(64, bytes)), std::free);
  if (!buffer) throw std::bad_alloc();
  dnnl::memory source(plain_desc(md.dims()), engine, plain.data());
  dnnl::memory target(md, engine, buffer.get());
  dnnl::reorder(source, target).execute(stream, source, target);
  stream.wait();
  layouts_.emplace_back(md, buffer);
  return buffer;
}

PreparedModel::PreparedModel(std::shared_ptr<const darknet::Model> model) : model_(std::move(model)) {
  for (const darknet::Layer& layer : model_->layers) {
    if (layer.type == darknet::LayerType::kConvolutional) {
      convolutions_.emplace(layer.index, std::make_unique<PreparedConvolution>(layer));
    }
  }
}

std::shared_ptr<const PreparedModel> PreparedModel::get(const std::shared_ptr<const darknet::Model>& model) {
  static std::mutex mutex;
  static std::map<const darknet::Model*, std::weak_ptr<const PreparedModel>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = cache.begin(); it != cache.end();) {
    it = it->second.expired() ? cache.erase(it) : std::next(it);
  }
  // A live entry holds its Model, so its address cannot have been reused by another Model.
  if (auto it = cache.find(model.get()); it != cache.end()) {
    if (auto prepared = it->second.lock()) return prepared;
  }
  auto prepared = std::make_shared<const PreparedModel>(model);
  cache[model.get()] = prepared;
  return prepared;
}

}  // namespace clouddetect::onednn
