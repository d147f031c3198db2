#include "backends/cpu_features.h"

#if CLOUDDETECT_HAS_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace clouddetect {

namespace {

#if CLOUDDETECT_HAS_ONEDNN
const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other";
  }
}
#endif

}  // namespace

CpuFeatures detect_cpu_features() {
  CpuFeatures features;
  features.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  features.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  features.vnni = __builtin_cpu_supports("avx512vnni");
  features.isa = "cpu";
#if CLOUDDETECT_HAS_ONEDNN
  // oneDNN's ISA values are feature bit masks; ONEDNN_MAX_CPU_ISA lowers the effective one.
  const dnnl::cpu_isa effective = dnnl::get_effective_cpu_isa();
  const auto bits = static_cast<unsigned>(effective);
  auto has = [&](dnnl_cpu_isa_t isa) { return (bits & static_cast<unsigned>(isa)) == static_cast<unsigned>(isa); };
  features.avx2 = features.avx2 && has(dnnl_cpu_isa_avx2);
  features.avx512 = features.avx512 && has(dnnl_cpu_isa_avx512_core);
  features.vnni = has(dnnl_cpu_isa_avx512_core_vnni) || has(dnnl_cpu_isa_avx2_vnni);
  features.isa = isa_name(effective);
#endif
  return features;
}

std::string cpu_features_json(const CpuFeatures& features) {
  auto flag = [](bool on) { return on ? "true" : "false"; };
  return std::string("\"cpu\":{\"isa\":\"") + features.isa + "\",\"avx2\":" + flag(features.avx2) +
         ",\"avx512\":" + flag(features.avx512) + ",\"vnni\":" + flag(features.vnni) + "}";
}

std::string precision_advice(const CpuFeatures& features, const std::string& precision) {
  if (precision == "int8" && !features.vnni) {
    return "int8 brings nothing on this CPU (no VNNI): it is no faster than fp32 and less accurate; serve fp32";
  }
  return "";
}

}  // namespace clouddetect
