// Weights prepared once per darknet::Model and shared read-only by every native backend instance:
// batch norm folded into weights and bias, weights reordered to the blocked layout the
// convolution primitive asks for.
//
// Lifetime and threading: get() returns the one PreparedModel of a Model while any instance holds
// it (keyed by the Model's address, held weakly). The blocked weights are filled lazily, once per
// (layer, layout), under a mutex at backend construction; after that forward() only reads them.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "darknet/model.h"

namespace clouddetect::onednn {

// One [convolutional] layer: folded bias and weights in every layout some instance asked for.
class PreparedConvolution {
 public:
  explicit PreparedConvolution(const darknet::Layer& layer);

  const darknet::Layer& layer() const { return *layer_; }
  const std::vector<float>& bias() const { return bias_; }  // [filters], batch norm folded
  // Folded fp32 weights in layout `md` (a reorder of the plain oihw/goihw layout), created on first
  // use with `engine`/`stream`, then shared. The buffer lives as long as this object.
  std::shared_ptr<const float> weights(const dnnl::memory::desc& md, const dnnl::engine& engine,
                                       dnnl::stream& stream) const;

  // Winograd F(tile x tile, 3x3) weights (kernels/winograd_weights.h), [position][channel][filter]
  // as `plain` describes them, in layout `md`; created once per (tile, md).
  std::shared_ptr<const float> winograd_weights(int tile, const dnnl::memory::desc& plain, const dnnl::memory::desc& md,
                                                const dnnl::engine& engine, dnnl::stream& stream) const;

  // int8 weights for an input quantised at `input_scales` (one, or one per input channel): the
  // folded weights times the input scale of their channel, so the convolution of the quantised
  // input is exact up to rounding, then quantised symmetrically per filter: filter f holds
  // round(w * input_scale / unit[f]) in [-max_weight, max_weight] (127, or 63 where products of a
  // u8 input would saturate, see make_convolutional_int8). `md` is the s8 layout the primitive
  // asked for (with whatever compensation its kernel keeps). Created once per (md, input_scales,
  // max_weight).
  struct Int8Weights {
    std::shared_ptr<const void> data;
    std::vector<float> unit;  // per filter: the real value of one accumulator step
    // [filter][channel within its group]: the sum over the taps of the quantised weight minus the
    // exact one, in units of the channel's input scale (what rounding adds per unit of input).
    std::vector<float> rounding_error;
  };
  Int8Weights int8_weights(const dnnl::memory::desc& md, const std::vector<float>& input_scales,
                           const dnnl::engine& engine, dnnl::stream& stream, int max_weight = 127) const;

 private:
  const darknet::Layer* layer_;
  std::vector<float> bias_;
  mutable std::mutex mutex_;
  mutable std::vector<std::pair<dnnl::memory::desc, std::shared_ptr<const float>>> layouts_;
  mutable std::vector<std::pair<int, std::pair<dnnl::memory::desc, std::shared_ptr<const float>>>> winograd_layouts_;
  struct Int8Layout {
    dnnl::memory::desc md;
    std::vector<float> input_scales;
    int max_weight;
    Int8Weights weights;
  };
  mutable std::vector<Int8Layout> int8_layouts_;
};

class PreparedModel {
 public:
  static std::shared_ptr<const PreparedModel> get(const std::shared_ptr<const darknet::Model>& model);

  explicit PreparedModel(std::shared_ptr<const darknet::Model> model);
  const darknet::Model& model() const { return *model_; }
  // The prepared convolution of cfg layer `index` (must be a [convolutional] layer).
  const PreparedConvolution& convolution(int index) const { return *convolutions_.at(index); }

 private:
  std::shared_ptr<const darknet::Model> model_;
  std::map<int, std::unique_ptr<PreparedConvolution>> convolutions_;
};

}  // namespace clouddetect::onednn
