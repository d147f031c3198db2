// The CPU features that decide which precision to serve. int8 pays only with VNNI (AVX-512 VNNI or
// AVX-VNNI): without it oneDNN multiplies int8 in 16-bit pairs with halved weights, no faster than
// fp32 and less accurate (docs/PERFORMANCE.md, "Which precision on which CPU").
#pragma once

#include <string>

namespace clouddetect {

struct CpuFeatures {
  // What the native backend will use: the CPU's features, capped by ONEDNN_MAX_CPU_ISA.
  bool avx2 = false;
  bool avx512 = false;
  bool vnni = false;
  std::string isa;  // oneDNN's name for its instruction set here, e.g. "avx512_core_vnni"
};

CpuFeatures detect_cpu_features();

// `"cpu":{"isa":"...","avx2":true,"avx512":true,"vnni":true}`, for a JSON log line.
std::string cpu_features_json(const CpuFeatures& features);

// Empty when `precision` suits this CPU, else one sentence saying what to serve instead.
std::string precision_advice(const CpuFeatures& features, const std::string& precision);

}  // namespace clouddetect
