// The six configurations of $CLOUDDETECT_SHARED/models/more-cfgs (cfg only) as test models: the real
// cfg with synthetic weights of its exact layout (darknet::fill_synthetic_weights, as `make-weights`
// writes them) and the COCO names. The full-size networks are tested at a small input size (their
// [net] width/height rewritten), so that a test of both backends stays within seconds; every layer is
// the one of the cfg, only the maps are smaller.
#pragma once

#include <memory>
#include <ostream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "darknet/cfg_parser.h"
#include "darknet/model_loader.h"
#include "darknet/synthetic_weights.h"
#include "shared_data.h"

namespace clouddetect::testing {

struct MoreCfg {
  const char* name;
  int size;  // tested input width and height (a multiple of 32)
};
inline void PrintTo(const MoreCfg& cfg, std::ostream* out) { *out << cfg.name << " at " << cfg.size; }

// yolov4-tiny and yolov4-tiny-3l come at 640 and 608, yolov3 and yolov4 at 608: tested at 416
// (their published COCO size) and 256.
inline const std::vector<MoreCfg>& more_cfgs() {
  static const std::vector<MoreCfg> cfgs = {{"yolov3-tiny-prn", 416}, {"yolov4-tiny", 416}, {"yolov4-tiny-3l", 416},
                                            {"yolov3", 256},          {"yolov3-spp", 256},  {"yolov4", 256}};
  return cfgs;
}

inline std::string more_cfg_path(const std::string& name) { return model_dir("more-cfgs") + "/" + name + ".cfg"; }

// The cfg text with the [net] section's width and height set to `size` (line numbers unchanged).
inline std::string cfg_text_at_size(const std::string& text, int size) {
  std::istringstream in(text);
  std::ostringstream out;
  std::string line;
  int section = 0;
  static const std::regex dimension(R"(^\s*(width|height)\s*=.*$)");
  std::smatch match;
  while (std::getline(in, line)) {
    if (line.find('[') != std::string::npos && line.find_first_not_of(" \t") == line.find('[')) ++section;
    if (section == 1 && std::regex_match(line, match, dimension)) line = match[1].str() + "=" + std::to_string(size);
    out << line << "\n";
  }
  return out.str();
}

inline std::shared_ptr<darknet::Model> load_more_cfg(const MoreCfg& cfg, unsigned seed = 1) {
  const std::string path = more_cfg_path(cfg.name);
  const darknet::Model original = darknet::parse_cfg_file(path);
  auto model =
      std::make_shared<darknet::Model>(darknet::parse_cfg_text(cfg_text_at_size(original.cfg_text, cfg.size), path));
  darknet::fill_synthetic_weights(*model, seed);
  model->class_names = darknet::read_class_names(model_dir("yolov3-tiny") + "/coco.names");
  return model;
}

inline std::string test_name(const char* name) {
  std::string result = name;
  for (char& c : result) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return result;
}

}  // namespace clouddetect::testing
