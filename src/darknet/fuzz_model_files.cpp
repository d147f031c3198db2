// libFuzzer target for the model files users bring: a cfg (first part of the input) and a weights
// file (the rest). Anything must parse or throw clouddetect::Error; never crash, never read past the end.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "darknet/cfg_parser.h"
#include "darknet/weights_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  // "\n#WEIGHTS\n" splits cfg text from weights bytes, so both readers see fuzzed input.
  const std::size_t split = input.find("\n#WEIGHTS\n");
  const std::string cfg = input.substr(0, split);
  try {
    clouddetect::darknet::Model model = clouddetect::darknet::parse_cfg_text(cfg, "fuzz.cfg");
    if (split != std::string::npos && clouddetect::darknet::expected_weights_size(model) < (64u << 20)) {
      std::vector<char> weights(input.begin() + static_cast<long>(split + 10), input.end());
      clouddetect::darknet::read_weights_bytes(weights, "fuzz.weights", model);
    }
  } catch (const clouddetect::Error&) {
  }
  return 0;
}
