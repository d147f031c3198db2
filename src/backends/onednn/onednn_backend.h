// The native backend: a darknet::Model executed on oneDNN primitives: fp32 (blocked layouts), or
// int8 (nhwc; s8 activations at per-channel scales from ActivationRanges, s8 weights at per-channel
// scales, heads and any layer that cannot run on scaled integers in fp32).
//
// Threading and lifetime: the folded, reordered weights are prepared once per Model and shared
// read-only by every instance; each instance owns its engine, stream, primitives and activations,
// so one instance per worker thread, and forward() is never called concurrently on one instance.
// Intra-op threads: Debian's libdnnl runs on OpenMP; each instance sets omp_set_num_threads
// (options.threads) on the calling thread before building and before every forward().
#pragma once

#include <memory>

#include "backends/activation_ranges.h"
#include "backends/backend.h"

namespace clouddetect {

// Throws Error{kInvalidArgument} for a layer kind this backend does not run (the message names the
// layer type and cfg line) or int8 without fitting activation ranges, Error{kInternal} for a oneDNN
// failure. Precision: fp32 or int8 (registry.cpp refuses others before this is called).
std::unique_ptr<Backend> make_onednn_backend(std::shared_ptr<const darknet::Model> model,
                                             const BackendOptions& options);

// At most the prepared weights all instances share (prepared_model.h), from the cfg alone.
std::int64_t onednn_weights_bytes(const darknet::Model& model, Precision precision, int instances);

namespace onednn {
// See clouddetect::measure_activation_ranges: fp32, every layer's output kept and measured.
ActivationRanges measure_activation_ranges(std::shared_ptr<const darknet::Model> model,
                                           const std::vector<Tensor>& inputs, int threads);
}  // namespace onednn

}  // namespace clouddetect
