// One channel block of the nChw8c / nChw16c layouts as a GCC vector, for the few loops of our own
// (winograd.cpp, input_convolution.cpp, max_pool_2x2.cpp). Their functions are compiled for AVX2+FMA
// (CLOUDDETECT_AVX2), some also for AVX-512 (CLOUDDETECT_AVX512), and only called after checking
// the CPU has it.
#pragma once

#include <cpuid.h>

#include <cmath>
#include <cstring>

#include "backends/onednn/activation.h"
#include "darknet/model.h"

#define CLOUDDETECT_AVX2 __attribute__((target("avx2,fma")))
// The nChw16c layout's loops on a CPU with AVX-512: one register per channel block, not two.
#define CLOUDDETECT_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")))
// A loop body compiled into each of its callers, at the caller's instruction set.
#define CLOUDDETECT_INLINED_AVX2 CLOUDDETECT_AVX2 inline __attribute__((always_inline))

#include "backends/onednn/kernels/lane_mish.h"  // uses CLOUDDETECT_AVX2

namespace clouddetect::onednn {

// (GCC drops vector_size on a dependent alias template: one specialisation per size.)
template <int Block>
struct LanesOf;
template <>
struct LanesOf<8> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct LanesOf<16> {
  typedef float type __attribute__((vector_size(64)));
};
template <int Block>
using Lanes = typename LanesOf<Block>::type;
static_assert(sizeof(Lanes<8>) == 8 * sizeof(float) && sizeof(Lanes<16>) == 16 * sizeof(float));

// By reference: a 64-byte vector passed by value would change the ABI between ISAs.
template <typename Vec>
CLOUDDETECT_AVX2 inline void load(Vec& v, const float* p) {
  std::memcpy(&v, p, sizeof v);
}
template <typename Vec>
CLOUDDETECT_AVX2 inline void store(float* p, const Vec& v) {
  std::memcpy(p, &v, sizeof v);
}

// A darknet activation applied to lanes: v > 0 ? v : slope * v (slope 1 linear, 0 relu, 0.1 leaky),
// or the logistic function, or mish.
struct LaneActivation {
  float slope;
  bool logistic;
  bool mish;
  static LaneActivation of(darknet::Activation activation) {
    return {activation == darknet::Activation::kLeaky  ? kLeakySlope
            : activation == darknet::Activation::kRelu ? 0.0f
                                                       : 1.0f,
            activation == darknet::Activation::kLogistic, activation == darknet::Activation::kMish};
  }
};

template <int Block>
CLOUDDETECT_AVX2 inline void activate(Lanes<Block>& v, const LaneActivation& activation) {
  if (activation.mish) {
    mish_lanes<Block>(v);
    return;
  }
  if (!activation.logistic) {
    v = v > 0 ? v : v * activation.slope;
    return;
  }
  float lanes[Block];
  store(lanes, v);
  for (float& x : lanes) x = 1.0f / (1.0f + std::exp(-x));
  load(v, lanes);
}

// The CPU runs CLOUDDETECT_AVX2 code.
inline bool has_avx2_fma() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
// The CPU runs CLOUDDETECT_AVX512 code.
inline bool has_avx512() {
  return has_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
}

// The CPU runs each AVX-512 instruction as two 256-bit halves (AMD Zen 4: family 25, the only
// one of that family with AVX-512), so AVX-512 multiplies no faster than AVX2 there.
inline bool avx512_half_width() {
  static const bool half = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!has_avx512() || !__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return false;
    const bool amd = ebx == 0x68747541 && edx == 0x69746e65 && ecx == 0x444d4163;  // "AuthenticAMD"
    if (!amd || !__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
    const unsigned family = ((eax >> 8) & 0xf) + ((eax >> 20) & 0xff);
    return family == 25;
  }();
  return half;
}

}  // namespace clouddetect::onednn
