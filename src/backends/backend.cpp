// What every backend shares: precision names and the kernel summary.
#include "backends/backend.h"

#include <algorithm>
#include <map>

#include "core/error.h"

namespace clouddetect {

const char* to_string(Precision precision) {
  switch (precision) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kInt8:
      return "int8";
  }
  return "?";
}

Precision parse_precision(const std::string& name) {
  for (Precision precision : {Precision::kFp32, Precision::kInt8}) {
    if (name == to_string(precision)) return precision;
  }
  throw Error(ErrorCode::kInvalidArgument, "unknown precision '" + name + "' (fp32 | int8)");
}

std::string summarize_kernels(const std::vector<std::string>& kernels) {
  std::map<std::string, int> counts;
  for (const std::string& kernel : kernels) ++counts[kernel];
  std::vector<std::pair<std::string, int>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string summary;
  for (const auto& [kernel, count] : sorted) {
    summary += (summary.empty() ? "" : ", ") + kernel + " x" + std::to_string(count);
  }
  return summary;
}

}  // namespace clouddetect
