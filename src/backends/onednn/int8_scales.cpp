#include "backends/onednn/int8_scales.h"

#include <algorithm>
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

}  // namespace

std::vector<Scales> int8_scales(const darknet::Model& model, const ActivationRanges& ranges,
                                const std::vector<int>& shortcut_of) {
  const auto& layers = model.layers;
  const int n = static_cast<int>(layers.size());
  ScaleGroups groups(n);
  for (int conv = 0; conv < n; ++conv) {
    if (const int shortcut = shortcut_of[static_cast<std::size_t>(conv)]; shortcut >= 0) {
      for (int k = conv; k <= shortcut; ++k) groups.join(k, layers[shortcut].shortcut.from);
    }
  }
  // Each channel's range, widened to the largest over its scale group.
  std::vector<std::vector<float>> group_range(layers.size());
  for (int i = 0; i < n; ++i) {
    const auto layer = static_cast<std::size_t>(i);
    const auto& lowest = ranges.channel_min[layer];
    const auto& highest = ranges.channel_max[layer];
    const auto& peak_mean = ranges.channel_peak_mean[layer];
    const auto& peak_sd = ranges.channel_peak_sd[layer];
    auto& group = group_range[static_cast<std::size_t>(groups.find(i))];
    group.resize(std::max(group.size(), lowest.size()), 0.0f);
    for (std::size_t c = 0; c < lowest.size(); ++c) {
      group[c] =
          std::max(group[c], std::min(std::max(-lowest[c], highest[c]), peak_mean[c] + kPeakDeviations * peak_sd[c]));
    }
  }
  std::vector<Scales> scales(layers.size());
  for (int i = 0; i < n; ++i) {
    for (float range : group_range[static_cast<std::size_t>(groups.find(i))]) {
      scales[static_cast<std::size_t>(i)].push_back(range > 0 ? range / 127.0f : 1.0f);
    }
  }
  return scales;
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
