// Darknet's mish activation, x tanh(ln(1 + e^x)), on one channel block of lanes (layers/lanes.h), for
// our loops that apply the activation themselves (Winograd, the input convolution): as
// x n / (n + 2) with n = e^x (e^x + 2), one vector exp per lane block. Relative error ~2e-7 against
// the scalar formula; OpenCV DNN computes it the same way.
#pragma once

#include <cstring>

// Included by lanes.h, which defines CLOUDDETECT_AVX2.

namespace clouddetect::onednn {

template <int Block>
struct IntLanesOf;
template <>
struct IntLanesOf<8> {
  typedef int type __attribute__((vector_size(32)));
};
template <>
struct IntLanesOf<16> {
  typedef int type __attribute__((vector_size(64)));
};

// e^x for x in [-87, 88] (clamped): 2^k e^r with k = round(x / ln 2), |r| <= ln 2 / 2, e^r by its
// Taylor polynomial to r^6 (error below 2e-7), 2^k built in the exponent bits. In place, by
// reference (a 64-byte vector passed by value would change the ABI between ISAs).
template <typename Vec, typename IntVec>
CLOUDDETECT_AVX2 inline void exp_lanes(Vec& x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const Vec shifted = x * 1.44269504f + kRound;
  const Vec k = shifted - kRound;
  const Vec r = (x - k * 0.693359375f) + k * 2.12194440e-4f;  // ln 2 in two parts (Cody-Waite)
  Vec p = r * (1.0f / 720) + (1.0f / 120);
  p = p * r + (1.0f / 24);
  p = p * r + (1.0f / 6);
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  IntVec bits;
  std::memcpy(&bits, &shifted, sizeof bits);  // k + 0x4B400000 (the bits of kRound)
  bits = (bits - 0x4B400000 + 127) << 23;
  Vec two_k;
  std::memcpy(&two_k, &bits, sizeof two_k);
  x = p * two_k;
}

// Above 20 (darknet's threshold) mish(x) is x in float.
template <int Block, typename Vec>
CLOUDDETECT_AVX2 inline void mish_lanes(Vec& v) {
  const Vec x = v < 20.0f ? v : 20.0f;
  Vec e = x;
  exp_lanes<Vec, typename IntLanesOf<Block>::type>(e);
  const Vec n = e * (e + 2.0f);
  const Vec result = x * n / (n + 2.0f);
  v = v < 20.0f ? result : v;
}

}  // namespace clouddetect::onednn
