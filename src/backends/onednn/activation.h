// Darknet's activations on oneDNN: as post-ops of a primitive, or as a step of their own.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include "backends/onednn/plan.h"
#include "darknet/model.h"

namespace clouddetect::onednn {

// Darknet's leaky activation: x > 0 ? x : kLeakySlope * x.
constexpr float kLeakySlope = 0.1f;

// Darknet's activations as oneDNN eltwise post-ops (leaky = relu with alpha kLeakySlope); linear adds none.
void append_activation(dnnl::post_ops& ops, darknet::Activation activation);
// Appends `activation` as a separate eltwise step over `data`, in place (none for linear).
void append_activation_in_place(Plan& plan, darknet::Activation activation, const dnnl::memory& data);

// True when `activation` commutes with positive scaling (may follow an int8 convolution).
bool scale_invariant(darknet::Activation activation);

}  // namespace clouddetect::onednn
