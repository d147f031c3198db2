// One instance's executable network: the model analysed (graph.h), its layers emitted into a Plan
// (emitters.h) over the shared prepared weights (prepared_model.h), and run per forward().
//
// Threading: one Network per backend instance; forward() must not run concurrently on one.
#pragma once

#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>
#include <vector>

#include "backends/activation_ranges.h"
#include "backends/onednn/graph.h"
#include "backends/onednn/plan.h"
#include "backends/onednn/prepared_model.h"
#include "core/types.h"
#include "darknet/model.h"

namespace clouddetect::onednn {

class Network {
 public:
  // `ranges`: required by kInt8 (must fit the model). Throws Error{kInvalidArgument} for a layer
  // kind the engine does not run or missing ranges, Error{kInternal} naming the layer for a oneDNN
  // failure. Sets the calling thread's OpenMP threads to `threads` (oneDNN sizes its kernels by it).
  Network(std::shared_ptr<const darknet::Model> model, int threads, Mode mode,
          std::shared_ptr<const ActivationRanges> ranges = nullptr);

  // As Backend::forward.
  void forward(const Tensor& input, std::vector<Tensor>& heads);

  const Plan& plan() const { return plan_; }
  // kCalibrate only: every layer's output (indexed by cfg layer) as of the last forward().
  const std::vector<dnnl::memory>& layer_outputs() const { return layer_outputs_; }

 private:
  void build(const ActivationRanges* ranges);
  void quantise_input(const Tensor& input);

  std::shared_ptr<const darknet::Model> model_;
  std::shared_ptr<const PreparedModel> prepared_;
  Mode mode_;
  int threads_;
  Plan plan_;
  dnnl::memory::dims input_dims_;
  dnnl::memory input_memory_;
  std::vector<dnnl::memory> head_memories_;
  std::vector<dnnl::memory> layer_outputs_;
  std::string building_;
};

}  // namespace clouddetect::onednn
