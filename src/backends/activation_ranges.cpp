// The calibration file of int8 inference: {"format": "clouddetect-activation-ranges", "version": 2,
// "model": "...", "images": N, "source": "which images", "fp32_layers": [convolutions kept in fp32], "absmax": [one per
// layer], "channel_min", "channel_max", "channel_peak_mean", "channel_peak_sd" and (optional, newer files)
// "channel_mean": [[one per channel] per layer]}.
// Version 1 (no peak statistics) is refused with the command that replaces it.
#include "backends/activation_ranges.h"

#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace clouddetect {

namespace {
constexpr const char* kFormat = "clouddetect-activation-ranges";
constexpr int kVersion = 2;
}  // namespace

void save_activation_ranges(const ActivationRanges& ranges, const std::string& path) {
  auto to_array = [](const std::vector<float>& values) {
    boost::json::array array;
    for (float value : values) array.emplace_back(static_cast<double>(value));
    return array;
  };
  auto to_arrays = [&](const std::vector<std::vector<float>>& layers) {
    boost::json::array array;
    for (const auto& layer : layers) array.emplace_back(to_array(layer));
    return array;
  };
  boost::json::object root{{"format", kFormat},
                           {"version", kVersion},
                           {"model", ranges.model},
                           {"images", ranges.images},
                           {"source", ranges.source},
                           {"fp32_layers", boost::json::value_from(ranges.fp32_layers)},
                           {"absmax", to_array(ranges.absmax)},
                           {"channel_min", to_arrays(ranges.channel_min)},
                           {"channel_max", to_arrays(ranges.channel_max)},
                           {"channel_peak_mean", to_arrays(ranges.channel_peak_mean)},
                           {"channel_peak_sd", to_arrays(ranges.channel_peak_sd)}};
  if (!ranges.channel_mean.empty()) root["channel_mean"] = to_arrays(ranges.channel_mean);
  std::ofstream out(path);
  out << boost::json::serialize(root) << "\n";
  if (!out.flush()) throw Error(ErrorCode::kInvalidArgument, "cannot write " + path);
}

namespace {

// Why the per-channel statistics cannot be real (min over max, a negative peak); null when they can.
const char* channel_statistics_error(const ActivationRanges& ranges) {
  for (std::size_t layer = 0; layer < ranges.channel_min.size(); ++layer) {
    for (std::size_t c = 0; c < ranges.channel_min[layer].size(); ++c) {
      if (ranges.channel_min[layer][c] > ranges.channel_max[layer][c]) return "a channel's min exceeds its max";
      if (ranges.channel_peak_mean[layer][c] < 0 || ranges.channel_peak_sd[layer][c] < 0) {
        return "a channel's peak statistics are negative";
      }
    }
  }
  return nullptr;
}

}  // namespace

ActivationRanges load_activation_ranges(const std::string& path, const darknet::Model& model) {
  std::ifstream in(path);
  if (!in) {
    throw Error(ErrorCode::kNotFound,
                "int8 needs activation ranges, and " + path + " does not exist: make it with `clouddetect calibrate`");
  }
  std::stringstream text;
  text << in.rdbuf();
  auto bad = [&](const std::string& why) { return Error(ErrorCode::kInvalidArgument, path + ": " + why); };
  boost::system::error_code ec;
  boost::json::value root = boost::json::parse(text.str(), ec);
  if (ec || !root.is_object()) throw bad("not a JSON object");
  const auto& object = root.as_object();
  const auto* format = object.if_contains("format");
  if (!format || !format->is_string() || format->as_string() != kFormat)
    throw bad(std::string("not a ") + kFormat + " file");
  const auto* version = object.if_contains("version");
  if (!version || !version->is_int64() || version->as_int64() != kVersion) {
    throw bad("version " + (version ? boost::json::serialize(*version) : std::string("none")) + ", not " +
              std::to_string(kVersion) + ": made by an older clouddetect, run `clouddetect calibrate` again");
  }
  ActivationRanges ranges;
  const auto* name = object.if_contains("model");
  const auto* images = object.if_contains("images");
  const auto* absmax = object.if_contains("absmax");
  const auto* channel_min = object.if_contains("channel_min");
  const auto* channel_max = object.if_contains("channel_max");
  const auto* peak_mean = object.if_contains("channel_peak_mean");
  const auto* peak_sd = object.if_contains("channel_peak_sd");
  if (!name || !name->is_string() || !images || !images->is_int64() || !absmax || !absmax->is_array() || !channel_min ||
      !channel_min->is_array() || !channel_max || !channel_max->is_array() || !peak_mean || !peak_mean->is_array() ||
      !peak_sd || !peak_sd->is_array()) {
    throw bad("needs model, images, absmax, channel_min, channel_max, channel_peak_mean and channel_peak_sd");
  }
  ranges.model = std::string(name->as_string());
  ranges.images = static_cast<int>(images->as_int64());
  if (const auto* source = object.if_contains("source"); source && source->is_string()) {
    ranges.source = std::string(source->as_string());
  }
  auto read_array = [&](const boost::json::value& array) {
    if (!array.is_array()) throw bad("expected an array of numbers");
    std::vector<float> values;
    for (const auto& value : array.as_array()) {
      if (!value.is_number()) throw bad("a range is not a number");
      const double number = value.to_number<double>();
      if (!(std::abs(number) <= 1e30)) throw bad("a range is " + std::to_string(number));
      values.push_back(static_cast<float>(number));
    }
    return values;
  };
  ranges.absmax = read_array(*absmax);
  for (const auto& layer : channel_min->as_array()) ranges.channel_min.push_back(read_array(layer));
  for (const auto& layer : channel_max->as_array()) ranges.channel_max.push_back(read_array(layer));
  for (const auto& layer : peak_mean->as_array()) ranges.channel_peak_mean.push_back(read_array(layer));
  for (const auto& layer : peak_sd->as_array()) ranges.channel_peak_sd.push_back(read_array(layer));
  if (const auto* mean = object.if_contains("channel_mean")) {
    if (!mean->is_array()) throw bad("channel_mean is not an array");
    for (const auto& layer : mean->as_array()) ranges.channel_mean.push_back(read_array(layer));
  }
  if (ranges.model != model.name || ranges.absmax.size() != model.layers.size()) {
    throw bad("measured on " + ranges.model + " (" + std::to_string(ranges.absmax.size()) + " layers), not on " +
              model.name + " (" + std::to_string(model.layers.size()) + " layers)");
  }
  if (!activation_ranges_fit(ranges, model)) throw bad("its per-channel arrays do not match the model's channels");
  if (const auto* fp32 = object.if_contains("fp32_layers")) {
    if (!fp32->is_array()) throw bad("fp32_layers is not an array");
    for (const auto& value : fp32->as_array()) {
      const std::int64_t layer = value.is_int64() ? value.as_int64() : -1;
      if (layer < 0 || layer >= static_cast<std::int64_t>(model.layers.size()) ||
          model.layers[static_cast<std::size_t>(layer)].type != darknet::LayerType::kConvolutional) {
        throw bad("fp32_layers holds " + boost::json::serialize(value) + ", not a convolution of " + model.name);
      }
      ranges.fp32_layers.push_back(static_cast<int>(layer));
    }
  }
  if (const char* why = channel_statistics_error(ranges)) throw bad(why);
  return ranges;
}

}  // namespace clouddetect
