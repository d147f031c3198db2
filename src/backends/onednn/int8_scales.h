// int8: the scales at which every layer's output is quantised, from the calibration's activation
// ranges. A quantised tensor q stands for the real values q * scale, with one scale per tensor or
// one per channel.
#pragma once

#include <vector>

#include "backends/activation_ranges.h"
#include "darknet/model.h"

namespace clouddetect::onednn {

using Scales = std::vector<float>;

// How one layer's int8 output stands for real values: s8 q is q * scale of its channel (symmetric),
// u8 q is (q - zero_point) * scale (asymmetric; zero_point > 0). One zero point per tensor (all
// oneDNN 2.6 takes), one scale per channel.
struct Quantisation {
  Scales scales;
  int zero_point = 0;
  bool operator==(const Quantisation& other) const { return scales == other.scales && zero_point == other.zero_point; }
};

// Per layer, per output channel, each side of a channel's range is the smaller of its calibration
// extreme and the mean + kPeakDeviations standard deviations of its per-image |peaks|: a rare
// outlier image does not stretch the step of every other image (a clipped percentile, without
// histograms; the measurements behind the rule are in docs/PERFORMANCE.md). A fused shortcut
// accumulates into its `from` storage, so the convolution, the shortcut and `from` share one
// symmetric set of scales covering all of them (channel-wise max): `shortcut_of` as in
// GraphAnalysis. Any other layer is asymmetric when that makes its steps at least
// kAsymmetricGain smaller (geometric mean over channels): after leaky a channel's negative
// side is about a tenth of its positive, and symmetric s8 would leave half of its codes unused.
// Zero points cost int8 some speed (oneDNN's kernels compensate for them; docs/PERFORMANCE.md) and
// bring the accuracy it is served for.
constexpr float kPeakDeviations = 3.0f;
constexpr float kAsymmetricGain = 1.1f;
std::vector<Quantisation> int8_quantisations(const darknet::Model& model, const ActivationRanges& ranges,
                                             const std::vector<int>& shortcut_of);

// The scales of a [route] of int8 parts: each part's (one, or per channel) scales expanded to its
// `channels`, channel group `group_id` of `groups` taken, all concatenated.
Scales route_scales(const std::vector<Scales>& part_scales, const std::vector<int>& part_channels, int groups,
                    int group_id);

// 1 / each scale: what quantising multiplies by.
Scales inverse(const Scales& scales);

}  // namespace clouddetect::onednn
