#include "backends/onednn/int8_scales.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace clouddetect::onednn {

namespace {

// Union-find over layers whose int8 outputs share their scales: a fused shortcut's convolution,
// the shortcut and its `from` (the convolution accumulates into `from`'s storage).
class ScaleGroups {
 public:
  explicit ScaleGroups(int n) : parent_(static_cast<std::size_t>(n)) {
    for (int i = 0; i < n; ++i) parent_[static_cast<std::size_t>(i)] = i;
  }
  int find(int i) {
    while (parent(i) != i) i = parent(i) = parent(parent(i));  // path halving
    return i;
  }
  void join(int a, int b) { parent(find(a)) = find(b); }

 private:
  int& parent(int i) { return parent_[static_cast<std::size_t>(i)]; }
  std::vector<int> parent_;
};

// One layer's channels: each side of its range (both >= 0), clipped at the typical peak.
struct ChannelRanges {
  std::vector<float> negative, positive;
};

ChannelRanges clipped_ranges(const ActivationRanges& ranges, std::size_t layer) {
  ChannelRanges result;
  for (std::size_t c = 0; c < ranges.channel_min[layer].size(); ++c) {
    const float clip = ranges.channel_peak_mean[layer][c] + kPeakDeviations * ranges.channel_peak_sd[layer][c];
    result.negative.push_back(std::clamp(-ranges.channel_min[layer][c], 0.0f, clip));
    result.positive.push_back(std::clamp(ranges.channel_max[layer][c], 0.0f, clip));
  }
  return result;
}

Scales symmetric_scales(const std::vector<float>& range) {
  Scales scales;
  for (float r : range) scales.push_back(r > 0 ? r / 127.0f : 1.0f);
  return scales;
}

// With zero point z, u8 codes 0..z-1 hold a channel's negative side and z+1..255 its positive side:
// the step is the larger of the two sides' needs.
Scales asymmetric_scales(const ChannelRanges& ranges, int zero_point) {
  Scales scales;
  for (std::size_t c = 0; c < ranges.positive.size(); ++c) {
    const float step = std::max(ranges.negative[c] / static_cast<float>(zero_point),
                                ranges.positive[c] / static_cast<float>(255 - zero_point));
    scales.push_back(step > 0 ? step : 1.0f);
  }
  return scales;
}

double log_step_sum(const Scales& scales) {
  double sum = 0;
  for (float scale : scales) sum += std::log(static_cast<double>(scale));
  return sum;
}

// The zero point that makes the steps smallest (geometric mean); symmetric s8 unless it gains
// kAsymmetricGain.
Quantisation best_quantisation(const ChannelRanges& ranges) {
  std::vector<float> range;
  for (std::size_t c = 0; c < ranges.positive.size(); ++c)
    range.push_back(std::max(ranges.negative[c], ranges.positive[c]));
  Quantisation best{symmetric_scales(range), 0};
  double smallest = log_step_sum(best.scales) - static_cast<double>(range.size()) * std::log(kAsymmetricGain);
  for (int zero_point = 1; zero_point < 255; ++zero_point) {
    Scales scales = asymmetric_scales(ranges, zero_point);
    if (const double sum = log_step_sum(scales); sum < smallest) {
      smallest = sum;
      best = {std::move(scales), zero_point};
    }
  }
  return best;
}

}  // namespace

std::vector<Quantisation> int8_quantisations(const darknet::Model& model, const ActivationRanges& ranges,
                                             const std::vector<int>& shortcut_of) {
  const auto& layers = model.layers;
  const int n = static_cast<int>(layers.size());
  ScaleGroups groups(n);
  std::vector<bool> grouped(layers.size(), false);
  for (int conv = 0; conv < n; ++conv) {
    if (const int shortcut = shortcut_of[static_cast<std::size_t>(conv)]; shortcut >= 0) {
      for (int k = conv; k <= shortcut; ++k) {
        groups.join(k, layers[shortcut].shortcut.from);
        grouped[static_cast<std::size_t>(k)] = true;
      }
      grouped[static_cast<std::size_t>(layers[shortcut].shortcut.from)] = true;
    }
  }
  // A group's channels take the widest range of its members, symmetric.
  std::vector<ChannelRanges> layer_ranges;
  for (int i = 0; i < n; ++i) layer_ranges.push_back(clipped_ranges(ranges, static_cast<std::size_t>(i)));
  std::vector<std::vector<float>> group_range(layers.size());
  for (int i = 0; i < n; ++i) {
    const ChannelRanges& channels = layer_ranges[static_cast<std::size_t>(i)];
    auto& group = group_range[static_cast<std::size_t>(groups.find(i))];
    group.resize(std::max(group.size(), channels.positive.size()), 0.0f);
    for (std::size_t c = 0; c < channels.positive.size(); ++c) {
      group[c] = std::max({group[c], channels.negative[c], channels.positive[c]});
    }
  }
  std::vector<Quantisation> result;
  for (int i = 0; i < n; ++i) {
    const auto layer = static_cast<std::size_t>(i);
    const std::vector<float>& group = group_range[static_cast<std::size_t>(groups.find(i))];
    result.push_back(grouped[layer] ? Quantisation{symmetric_scales(group), 0}
                                    : best_quantisation(layer_ranges[layer]));
  }
  return result;
}

Scales route_scales(const std::vector<Scales>& part_scales, const std::vector<int>& part_channels, int groups,
                    int group_id) {
  Scales result;
  for (std::size_t i = 0; i < part_scales.size(); ++i) {
    const auto channels = static_cast<std::size_t>(part_channels[i]);
    const Scales full = part_scales[i].size() == 1 ? Scales(channels, part_scales[i][0]) : part_scales[i];
    const std::size_t part = channels / static_cast<std::size_t>(groups);
    const auto first = full.begin() + static_cast<std::ptrdiff_t>(part * static_cast<std::size_t>(group_id));
    result.insert(result.end(), first, first + static_cast<std::ptrdiff_t>(part));
  }
  return result;
}

Scales inverse(const Scales& scales) {
  Scales result;
  for (float scale : scales) result.push_back(1.0f / scale);
  return result;
}

}  // namespace clouddetect::onednn
