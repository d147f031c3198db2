#include "backends/onednn/prepared_model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "backends/onednn/batch_norm_folding.h"
#include "backends/onednn/kernels/winograd_weights.h"
#include "backends/onednn/plan.h"

namespace clouddetect::onednn {

PreparedConvolution::PreparedConvolution(const darknet::Layer& layer) : layer_(&layer) {
  bias_ = fold_batch_norm_bias(layer);
}

namespace {

std::shared_ptr<void> aligned_buffer(std::size_t bytes) {
  std::shared_ptr<void> buffer(std::aligned_alloc(64, (bytes + 63) / 64 * 64), std::free);
  if (!buffer) throw std::bad_alloc();
  return buffer;
}

// `plain` (in layout `plain_md`) reordered into a new buffer of layout `md`, scaled by `attr`'s
// output scales if it has any.
std::shared_ptr<void> reordered(std::vector<float>& plain, const dnnl::memory::desc& plain_md,
                                const dnnl::memory::desc& md, const dnnl::engine& engine, dnnl::stream& stream,
                                const dnnl::primitive_attr& attr = {}) {
  auto buffer = aligned_buffer(md.get_size());
  dnnl::memory source(plain_md, engine, plain.data());
  dnnl::memory target(md, engine, buffer.get());
  dnnl::reorder(dnnl::reorder::primitive_desc(engine, source.get_desc(), engine, md, attr))
      .execute(stream, source, target);
  stream.wait();
  return buffer;
}

}  // namespace

std::shared_ptr<const float> PreparedConvolution::weights(const dnnl::memory::desc& md, const dnnl::engine& engine,
                                                          dnnl::stream& stream) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [layout, buffer] : layouts_) {
    if (layout == md) return buffer;
  }
  // Folded plain weights exist only while reordering: the darknet model keeps the originals.
  std::vector<float> plain = fold_batch_norm_weights(*layer_);
  auto buffer = std::static_pointer_cast<float>(reordered(plain, plain_desc(md.dims()), md, engine, stream));
  layouts_.emplace_back(md, buffer);
  return buffer;
}

std::shared_ptr<const float> PreparedConvolution::winograd_weights(int tile, const dnnl::memory::desc& plain,
                                                                   const dnnl::memory::desc& md,
                                                                   const dnnl::engine& engine,
                                                                   dnnl::stream& stream) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [layout_tile, layout] : winograd_layouts_) {
    if (layout_tile == tile && layout.first == md) return layout.second;
  }
  std::vector<float> transformed = onednn::winograd_weights(fold_batch_norm_weights(*layer_), layer_->output.c,
                                                            layer_->input.c, tile, layer_->convolutional.stride);
  auto buffer = std::static_pointer_cast<float>(reordered(transformed, plain, md, engine, stream));
  winograd_layouts_.push_back({tile, {md, buffer}});
  return buffer;
}

PreparedConvolution::Int8Weights PreparedConvolution::int8_weights(const dnnl::memory::desc& md,
                                                                   const std::vector<float>& input_scales,
                                                                   const dnnl::engine& engine, dnnl::stream& stream,
                                                                   int max_weight) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const Int8Layout& layout : int8_layouts_) {
    if (layout.md == md && layout.input_scales == input_scales && layout.max_weight == max_weight) {
      return layout.weights;
    }
  }
  const auto& p = layer_->convolutional;
  const std::size_t channels = static_cast<std::size_t>(layer_->input.c);
  if (input_scales.size() != 1 && input_scales.size() != channels) {
    throw dnnl::error(dnnl_invalid_arguments, "int8 weights: one input scale, or one per input channel");
  }
  // Plain weights are [filter][channel within its group][kh][kw].
  std::vector<float> plain = fold_batch_norm_weights(*layer_);
  const std::size_t filters = bias_.size();
  const std::size_t group_channels = channels / static_cast<std::size_t>(p.groups);
  const std::size_t filters_per_group = filters / static_cast<std::size_t>(p.groups);
  const std::size_t taps = static_cast<std::size_t>(p.size * p.size);
  Int8Weights result;
  result.unit.resize(filters);
  std::vector<float> inverse(filters);
  for (std::size_t f = 0; f < filters; ++f) {
    float largest = 0;
    for (std::size_t c = 0; c < group_channels; ++c) {
      const std::size_t channel = f / filters_per_group * group_channels + c;
      const float scale = input_scales.size() == 1 ? input_scales[0] : input_scales[channel];
      for (std::size_t t = 0; t < taps; ++t) {
        float& w = plain[(f * group_channels + c) * taps + t];
        w *= scale;
        largest = std::max(largest, std::abs(w));
      }
    }
    result.unit[f] = largest > 0 ? largest / static_cast<float>(max_weight) : 1.0f;
    inverse[f] = 1.0f / result.unit[f];
  }
  result.rounding_error.assign(filters * group_channels, 0.0f);
  for (std::size_t f = 0; f < filters; ++f) {
    const float limit = static_cast<float>(max_weight);
    for (std::size_t c = 0; c < group_channels; ++c) {
      for (std::size_t t = 0; t < taps; ++t) {
        const float w = plain[(f * group_channels + c) * taps + t];
        const float q = std::clamp(std::nearbyint(w * inverse[f]), -limit, limit);
        result.rounding_error[f * group_channels + c] += q * result.unit[f] - w;
      }
    }
  }
  dnnl::primitive_attr attr;
  // Per filter: dim 0 of oihw, dims 0 and 1 (group, filter) of goihw.
  attr.set_output_scales(md.dims().size() == 5 ? 0b11 : 0b1, inverse);
  result.data = reordered(plain, plain_desc(md.dims()), md, engine, stream, attr);
  int8_layouts_.push_back({md, input_scales, max_weight, result});
  return result;
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
