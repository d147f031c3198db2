// Parses a Darknet .cfg into typed layers with their shapes (no weights yet).
#pragma once

#include <string>

#include "darknet/model.h"

namespace clouddetect::darknet {

// Throws Error{kInvalidArgument} naming `source_name` and the line for anything malformed or not
// supported (unknown section or key, bad value, inconsistent shapes).
Model parse_cfg_text(const std::string& text, const std::string& source_name);
Model parse_cfg_file(const std::string& path);

}  // namespace clouddetect::darknet
