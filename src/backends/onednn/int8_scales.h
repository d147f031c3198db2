// int8: the scales at which every layer's output is quantised, from the calibration's activation
// ranges. A quantised tensor q stands for the real values q * scale, with one scale per tensor or
// one per channel.
#pragma once

#include <vector>

#include "backends/activation_ranges.h"
#include "darknet/model.h"

namespace clouddetect::onednn {

using Scales = std::vector<float>;

// Per layer, per output channel: the s8 scale range / 127, where a channel's range is the smaller
// of its calibration maximum and the mean + kPeakDeviations standard deviations of its per-image
// maxima: a rare outlier image does not stretch the step of every other image (a clipped
// percentile, without histograms; the measurements behind the rule are in docs/PERFORMANCE.md). A
// fused shortcut accumulates into its `from` storage, so the convolution, the shortcut and `from`
// share one set of scales covering all of them (channel-wise max): `shortcut_of` as in GraphAnalysis.
constexpr float kPeakDeviations = 3.0f;
std::vector<Scales> int8_scales(const darknet::Model& model, const ActivationRanges& ranges,
                                const std::vector<int>& shortcut_of);

// The scales of a [route] of int8 parts: each part's (one, or per channel) scales expanded to its
// `channels`, channel group `group_id` of `groups` taken, all concatenated.
Scales route_scales(const std::vector<Scales>& part_scales, const std::vector<int>& part_channels, int groups,
                    int group_id);

// 1 / each scale: what quantising multiplies by.
Scales inverse(const Scales& scales);

}  // namespace clouddetect::onednn
