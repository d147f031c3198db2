#include "darknet/cfg_parser.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"

namespace clouddetect::darknet {
namespace {

struct Option {
  std::string value;
  int line = 0;
  bool used = false;
};

struct Section {
  std::string type;
  int line = 0;
  std::map<std::string, Option> options;
};

// Keys that only matter for training (or for darknet's own NMS) and do not change inference.
const std::set<std::string> kTrainingKeys = {"batch",
                                             "subdivisions",
                                             "momentum",
                                             "decay",
                                             "angle",
                                             "saturation",
                                             "exposure",
                                             "hue",
                                             "learning_rate",
                                             "burn_in",
                                             "max_batches",
                                             "policy",
                                             "steps",
                                             "scales",
                                             "jitter",
                                             "ignore_thresh",
                                             "truth_thresh",
                                             "random",
                                             "iou_thresh",
                                             "iou_normalizer",
                                             "iou_loss",
                                             "cls_normalizer",
                                             "nms_kind",
                                             "beta_nms",
                                             "probability",
                                             "max_delta",
                                             "counters_per_class",
                                             "label_smooth_eps",
                                             "resize",
                                             "mosaic",
                                             "flip",
                                             "blur",
                                             "gaussian_noise",
                                             "power",
                                             "gamma",
                                             "mixup",
                                             "cutmix",
                                             "track",
                                             "time_steps",
                                             "optimized_memory",
                                             "workspace_size_limit_MB",
                                             "adam",
                                             "B1",
                                             "B2",
                                             "eps",
                                             "min_crop",
                                             "max_crop",
                                             "aspect",
                                             "focal_loss",
                                             "max",
                                             "dontsave",
                                             "objectness_smooth",
                                             "obj_normalizer",
                                             "delta_normalizer",
                                             "iou_thresh_kind",
                                             "random_shift"};

std::string trim(const std::string& s) {
  auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

class SectionReader {
 public:
  SectionReader(Section& section, const std::string& source) : section_(section), source_(source) {}

  [[noreturn]] void fail(int line, const std::string& message) const {
    throw Error(ErrorCode::kInvalidArgument,
                source_ + ":" + std::to_string(line) + ": [" + section_.type + "] " + message);
  }
  [[noreturn]] void fail(const std::string& message) const { fail(section_.line, message); }

  bool has(const std::string& key) const { return section_.options.count(key) != 0; }

  int get_int(const std::string& key, int fallback) {
    auto it = section_.options.find(key);
    if (it == section_.options.end()) return fallback;
    it->second.used = true;
    return parse_int(it->second.value, key, it->second.line);
  }

  float get_float(const std::string& key, float fallback) {
    auto it = section_.options.find(key);
    if (it == section_.options.end()) return fallback;
    it->second.used = true;
    char* end = nullptr;
    errno = 0;
    float value = std::strtof(it->second.value.c_str(), &end);
    if (errno != 0 || end == it->second.value.c_str() || *end != '\0') {
      fail(it->second.line, key + "=" + it->second.value + " is not a number");
    }
    return value;
  }

  std::string get_string(const std::string& key, const std::string& fallback) {
    auto it = section_.options.find(key);
    if (it == section_.options.end()) return fallback;
    it->second.used = true;
    return it->second.value;
  }

  std::vector<int> get_int_list(const std::string& key) {
    auto it = section_.options.find(key);
    if (it == section_.options.end()) return {};
    it->second.used = true;
    std::vector<int> values;
    std::stringstream list(it->second.value);
    std::string item;
    while (std::getline(list, item, ',')) values.push_back(parse_int(trim(item), key, it->second.line));
    return values;
  }

  std::vector<float> get_float_list(const std::string& key) {
    auto it = section_.options.find(key);
    if (it == section_.options.end()) return {};
    it->second.used = true;
    std::vector<float> values;
    std::stringstream list(it->second.value);
    std::string item;
    while (std::getline(list, item, ',')) {
      item = trim(item);
      char* end = nullptr;
      float value = std::strtof(item.c_str(), &end);
      if (item.empty() || *end != '\0') fail(it->second.line, key + " has a non-number: " + item);
      values.push_back(value);
    }
    return values;
  }

  Activation get_activation(const std::string& fallback) {
    std::string name = get_string("activation", fallback);
    if (name == "linear") return Activation::kLinear;
    if (name == "leaky") return Activation::kLeaky;
    if (name == "relu") return Activation::kRelu;
    if (name == "logistic") return Activation::kLogistic;
    if (name == "mish") return Activation::kMish;  // x * tanh(ln(1 + e^x))
    fail(section_.options["activation"].line, "unsupported activation '" + name + "'");
  }

  int positive(const std::string& key, int value) const {
    if (value <= 0) fail(key + " must be positive, got " + std::to_string(value));
    return value;
  }

  // Every key must have been read or be a known training-only key: anything else would be
  // silently ignored, and the network would not be the one the cfg describes.
  void reject_unused() const {
    for (const auto& [key, option] : section_.options) {
      if (!option.used && !kTrainingKeys.count(key)) fail(option.line, "unsupported key '" + key + "'");
    }
  }

 private:
  int parse_int(const std::string& text, const std::string& key, int line) const {
    char* end = nullptr;
    errno = 0;
    long value = std::strtol(text.c_str(), &end, 10);
    if (errno != 0 || end == text.c_str() || *end != '\0' || value < -(1 << 30) || value > (1 << 30)) {
      fail(line, key + "=" + text + " is not an integer");
    }
    return static_cast<int>(value);
  }

  Section& section_;
  const std::string& source_;
};

std::vector<Section> split_sections(const std::string& text, const std::string& source) {
  std::vector<Section> sections;
  std::istringstream in(text);
  std::string raw;
  int line_number = 0;
  while (std::getline(in, raw)) {
    ++line_number;
    std::string line = trim(raw.substr(0, raw.find_first_of("#;")));
    if (line.empty()) continue;
    if (line.front() == '[') {
      if (line.back() != ']') {
        throw Error(ErrorCode::kInvalidArgument,
                    source + ":" + std::to_string(line_number) + ": unterminated section header");
      }
      sections.push_back(Section{trim(line.substr(1, line.size() - 2)), line_number, {}});
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      throw Error(ErrorCode::kInvalidArgument,
                  source + ":" + std::to_string(line_number) + ": expected key=value, got '" + line + "'");
    }
    if (sections.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  source + ":" + std::to_string(line_number) + ": key before any [section]");
    }
    std::string key = trim(line.substr(0, eq));
    auto& options = sections.back().options;
    if (options.count(key)) {
      throw Error(ErrorCode::kInvalidArgument,
                  source + ":" + std::to_string(line_number) + ": duplicate key '" + key + "'");
    }
    options[key] = Option{trim(line.substr(eq + 1)), line_number, false};
  }
  return sections;
}

// Resolves a darknet layer reference (negative = relative to `index`) to an absolute index.
int absolute_layer(SectionReader& reader, int reference, int index) {
  int absolute = reference < 0 ? index + reference : reference;
  if (absolute < 0 || absolute >= index) {
    reader.fail("layer reference " + std::to_string(reference) + " is outside 0.." + std::to_string(index - 1));
  }
  return absolute;
}

// One function per section kind, as darknet's parse_convolutional(): each sets `layer`'s type,
// parameters and output shape from its keys and the shape it reads (`current`).
void parse_convolutional(SectionReader& reader, const Shape& current, Layer& layer) {
  layer.type = LayerType::kConvolutional;
  auto& p = layer.convolutional;
  p.filters = reader.positive("filters", reader.get_int("filters", 1));
  p.size = reader.positive("size", reader.get_int("size", 1));
  p.stride = reader.positive("stride", reader.get_int("stride", 1));
  int pad = reader.get_int("pad", 0);
  p.padding = reader.get_int("padding", 0);
  if (pad) p.padding = p.size / 2;
  p.groups = reader.positive("groups", reader.get_int("groups", 1));
  p.batch_normalize = reader.get_int("batch_normalize", 0) != 0;
  p.activation = reader.get_activation("logistic");
  if (current.c % p.groups != 0 || p.filters % p.groups != 0) {
    reader.fail("groups=" + std::to_string(p.groups) + " does not divide input channels " + std::to_string(current.c) +
                " and filters " + std::to_string(p.filters));
  }
  int out_h = (current.h + 2 * p.padding - p.size) / p.stride + 1;
  int out_w = (current.w + 2 * p.padding - p.size) / p.stride + 1;
  layer.output = {p.filters, out_h, out_w};
}

void parse_maxpool(SectionReader& reader, const Shape& current, Layer& layer) {
  layer.type = LayerType::kMaxpool;
  auto& p = layer.maxpool;
  p.stride = reader.positive("stride", reader.get_int("stride", 1));
  p.size = reader.positive("size", reader.get_int("size", p.stride));
  p.padding = reader.get_int("padding", p.size - 1);
  if (p.padding < 0) reader.fail("padding must not be negative");
  layer.output = {current.c, (current.h + p.padding - p.size) / p.stride + 1,
                  (current.w + p.padding - p.size) / p.stride + 1};
}

void parse_upsample(SectionReader& reader, const Shape& current, Layer& layer) {
  layer.type = LayerType::kUpsample;
  layer.upsample_stride = reader.positive("stride", reader.get_int("stride", 2));
  if (reader.get_float("scale", 1.0f) != 1.0f) reader.fail("scale other than 1 is not supported");
  layer.output = {current.c, current.h * layer.upsample_stride, current.w * layer.upsample_stride};
}

void parse_route(SectionReader& reader, const Model& model, Layer& layer) {
  layer.type = LayerType::kRoute;
  auto& p = layer.route;
  std::vector<int> references = reader.get_int_list("layers");
  if (references.empty()) reader.fail("route needs layers=");
  p.groups = reader.positive("groups", reader.get_int("groups", 1));
  p.group_id = reader.get_int("group_id", 0);
  if (p.group_id < 0 || p.group_id >= p.groups) reader.fail("group_id out of range");
  Shape out{0, 0, 0};
  for (int reference : references) {
    int from = absolute_layer(reader, reference, layer.index);
    const Shape& in = model.layers[from].output;
    if (out.c == 0) {
      out.h = in.h;
      out.w = in.w;
    } else if (in.h != out.h || in.w != out.w) {
      reader.fail("routed layers have different sizes (" + std::to_string(in.w) + "x" + std::to_string(in.h) + " vs " +
                  std::to_string(out.w) + "x" + std::to_string(out.h) + ")");
    }
    if (in.c % p.groups != 0) reader.fail("groups does not divide the channels of a routed layer");
    out.c += in.c / p.groups;
    p.layers.push_back(from);
  }
  layer.output = out;
}

void parse_shortcut(SectionReader& reader, const Model& model, const Shape& current, Layer& layer) {
  layer.type = LayerType::kShortcut;
  auto& p = layer.shortcut;
  std::vector<int> from = reader.get_int_list("from");
  if (from.size() != 1) reader.fail("shortcut needs exactly one from= layer");
  p.from = absolute_layer(reader, from[0], layer.index);
  p.activation = reader.get_activation("linear");
  if (reader.get_string("weights_type", "none") != "none") reader.fail("weighted shortcut is not supported");
  const Shape& other = model.layers[p.from].output;
  if (other.h != current.h || other.w != current.w) {
    reader.fail("shortcut from layer " + std::to_string(p.from) + " has a different size (" + std::to_string(other.w) +
                "x" + std::to_string(other.h) + " vs " + std::to_string(current.w) + "x" + std::to_string(current.h) +
                ")");
  }
  layer.output = current;
}

void parse_yolo(SectionReader& reader, const Shape& current, Layer& layer) {
  layer.type = LayerType::kYolo;
  auto& p = layer.yolo;
  p.classes = reader.positive("classes", reader.get_int("classes", 20));
  p.num = reader.positive("num", reader.get_int("num", 1));
  p.mask = reader.get_int_list("mask");
  if (p.mask.empty()) {
    for (int i = 0; i < p.num; ++i) p.mask.push_back(i);
  }
  p.anchors = reader.get_float_list("anchors");
  p.scale_x_y = reader.get_float("scale_x_y", 1.0f);
  if (reader.get_int("new_coords", 0) != 0) reader.fail("new_coords=1 is not supported");
  if (static_cast<int>(p.anchors.size()) != 2 * p.num) {
    reader.fail("anchors has " + std::to_string(p.anchors.size()) + " values, num=" + std::to_string(p.num) +
                " needs " + std::to_string(2 * p.num));
  }
  for (int m : p.mask) {
    if (m < 0 || m >= p.num) reader.fail("mask index " + std::to_string(m) + " >= num " + std::to_string(p.num));
  }
  int expected = static_cast<int>(p.mask.size()) * (p.classes + 5);
  if (current.c != expected) {
    reader.fail("input has " + std::to_string(current.c) + " channels, mask and classes need " +
                std::to_string(expected));
  }
  layer.output = current;
}

}  // namespace

Model parse_cfg_text(const std::string& text, const std::string& source_name) {
  std::vector<Section> sections = split_sections(text, source_name);
  if (sections.empty() || (sections[0].type != "net" && sections[0].type != "network")) {
    throw Error(ErrorCode::kInvalidArgument, source_name + ": the first section must be [net]");
  }
  Model model;
  model.cfg_path = source_name;
  model.cfg_text = text;
  model.name = std::filesystem::path(source_name).stem().string();
  {
    SectionReader net(sections[0], source_name);
    model.width = net.positive("width", net.get_int("width", 416));
    model.height = net.positive("height", net.get_int("height", 416));
    model.channels = net.positive("channels", net.get_int("channels", 3));
    model.letter_box = net.get_int("letter_box", 0) != 0;
    if (model.width > 4096 || model.height > 4096 || model.channels > 4) {
      net.fail("input " + std::to_string(model.width) + "x" + std::to_string(model.height) + "x" +
               std::to_string(model.channels) + " is out of range");
    }
    net.reject_unused();
  }

  Shape current{model.channels, model.height, model.width};
  for (std::size_t s = 1; s < sections.size(); ++s) {
    Section& section = sections[s];
    SectionReader reader(section, source_name);
    Layer layer;
    layer.index = static_cast<int>(model.layers.size());
    layer.line = section.line;
    layer.input = current;
    const std::string& type = section.type;

    if (type == "convolutional" || type == "conv") {
      parse_convolutional(reader, current, layer);
    } else if (type == "maxpool" || type == "max") {
      parse_maxpool(reader, current, layer);
    } else if (type == "upsample") {
      parse_upsample(reader, current, layer);
    } else if (type == "route") {
      parse_route(reader, model, layer);
    } else if (type == "shortcut") {
      parse_shortcut(reader, model, current, layer);
    } else if (type == "dropout") {
      layer.type = LayerType::kDropout;
      layer.output = current;
    } else if (type == "yolo") {
      parse_yolo(reader, current, layer);
    } else {
      reader.fail("unsupported layer type");
    }
    if (layer.output.c <= 0 || layer.output.h <= 0 || layer.output.w <= 0) {
      reader.fail("output size " + std::to_string(layer.output.c) + "x" + std::to_string(layer.output.h) + "x" +
                  std::to_string(layer.output.w) + " is empty");
    }
    reader.reject_unused();
    current = layer.output;
    model.layers.push_back(std::move(layer));
  }

  auto heads = model.yolo_layers();
  if (heads.empty()) throw Error(ErrorCode::kInvalidArgument, source_name + ": no [yolo] layer");
  for (int index : heads) {
    if (index == 0 || model.layers[index].yolo.classes != model.num_classes()) {
      throw Error(ErrorCode::kInvalidArgument,
                  source_name + ":" + std::to_string(model.layers[index].line) + ": [yolo] layers disagree on classes");
    }
  }
  return model;
}

Model parse_cfg_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot open cfg file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return parse_cfg_text(text.str(), path);
}

}  // namespace clouddetect::darknet
