// The native backend: a darknet::Model executed on oneDNN primitives (fp32, blocked layouts).
//
// Threading and lifetime: the folded, reordered weights are prepared once per Model and shared
// read-only by every instance; each instance owns its engine, stream, primitives and activations,
// so one instance per worker thread, and forward() is never called concurrently on one instance.
// Intra-op threads: Debian's libdnnl runs on OpenMP; each instance sets omp_set_num_threads
// (options.threads) on the calling thread before building and before every forward().
#pragma once

#include <memory>

#include "backends/backend.h"

namespace clouddetect {

// Throws Error{kInvalidArgument} for a layer kind or precision this backend does not run (the
// message names the layer type and cfg line), Error{kInternal} for a oneDNN failure.
std::unique_ptr<Backend> make_onednn_backend(std::shared_ptr<const darknet::Model> model,
                                             const BackendOptions& options);

}  // namespace clouddetect
