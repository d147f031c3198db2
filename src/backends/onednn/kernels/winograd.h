// Winograd F(m x m, 3 x 3) convolution of our own, for the CPUs where oneDNN 2.6 has none: its
// Winograd kernels need AVX-512, and the AMD EPYC VMs the service is deployed on have AVX2. There
// the direct kernels already run near the core's peak, so fewer multiplies is the only way left
// to go faster: F(2x2) needs 2.25x fewer than direct, F(4x4) 4x (Lavin & Gray, 2015). At stride 2
// (a polyphase form: the even input samples through F(m, 2), the odd ones as they are) F(4x4) needs
// 1.78x fewer. With AVX-512 it runs most of the layers oneDNN has a Winograd for too: there its
// kernels lose to these transforms (compiled for AVX-512) around its batched GEMM.
//
// One plan step, over blocks of tile rows: the input transform (ours: additions and small constant
// multiples), the products for all kA^2 transformed positions (one oneDNN batched matmul, or where
// the transformed weights are large our panel kernels, panel_product.h), and the output transform
// with the folded bias, the activation and optionally a 2x2 max pool (ours).
// Weights are transformed once per model (PreparedConvolution::winograd_weights) and shared.
#pragma once

#include <cstddef>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

#include "backends/onednn/plan.h"
#include "backends/onednn/prepared_model.h"
#include "darknet/model.h"

namespace clouddetect::onednn {

// True when `layer` (a [convolutional]) can run as our Winograd in `plan`'s activation layout on
// this CPU: a dense 3x3 convolution of stride 1 or 2 padded by 1, channels and filters multiples of
// the channel block (8 or 16), and a CPU with AVX2 and FMA.
bool own_winograd_fits(const Plan& plan, const darknet::Layer& layer);

// V and M of one block of tile rows (make_own_winograd) take up to this many bytes, so that they
// stay in the L2 cache between the transforms and the matmul: half this core's L2 (512 KB when
// the system does not say; block sizes compared in docs/PERFORMANCE.md).
std::size_t winograd_block_bytes();

// True when the products of F(tile x tile, 3x3) for `layer` (own_winograd_fits()) run as our panels.
bool own_winograd_panels(const Plan& plan, const darknet::Layer& layer, int tile);

// F(tile x tile, 3x3), tile 2, 3 or 4, at the layer's stride, for a layer own_winograd_fits(). `src`
// in any layout (reordered to the plan's activation layout if needed); returns the activated output
// in that layout, written to `into` when given (a memory of that layout). With `pool` (stride 1,
// the output map must be even), returns the output of a 2x2 stride-2 max pool of it instead, the
// full-size output never being stored. With `accumulate` (and `into`, no pool), a [shortcut] fused
// in: adds the activated output to what `into` holds and applies *accumulate, the shortcut's
// activation, in place.
// The plan step is named "clouddetect:winograd_<tile>x3[s2][+max_pool_2x2][/panels]", "/panels"
// where the products run as our panel kernels instead of a batched matmul.
dnnl::memory make_own_winograd(Plan& plan, const PreparedConvolution& prepared, const dnnl::memory& src, int tile,
                               const dnnl::memory* into = nullptr, bool pool = false,
                               const darknet::Activation* accumulate = nullptr);

}  // namespace clouddetect::onednn
