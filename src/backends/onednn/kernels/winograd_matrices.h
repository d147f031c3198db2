// The Winograd matrices of F(m x m, 3 x 3), m = 2, 3, 4, at stride 1 and 2: shared by the weight
// transform (winograd_weights.cpp, once per model) and the input/output transforms (winograd.cpp,
// per forward).
#pragma once

namespace clouddetect::onednn {

// Lavin & Gray's matrices: output Y = AT [(G g GT) . (BT d B)] A for a kA x kA input patch d
// ((Tile - 1) * Stride + 3 wide) and a 3x3 filter g, the correlation a convolution layer computes.
template <int Tile, int Stride = 1>
struct Matrices;

template <>
struct Matrices<2> {
  static constexpr int kA = 4;
  static constexpr float kBT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
  static constexpr float kAT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
  static constexpr double kG[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
};

// F(3x3): points 0, 1, -1, 2 and infinity (BT solved from AT and G; verified on random data).
template <>
struct Matrices<3> {
  static constexpr int kA = 5;
  static constexpr float kBT[5][5] = {
      {2, -1, -2, 1, 0}, {0, -2, -1, 1, 0}, {0, 2, -3, 1, 0}, {0, -1, 0, 1, 0}, {0, 2, -1, -2, 1}};
  static constexpr float kAT[3][5] = {{1, 1, 1, 1, 0}, {0, 1, -1, 2, 0}, {0, 1, 1, 4, 1}};
  static constexpr double kG[5][3] = {
      {0.5, 0, 0}, {-0.5, -0.5, -0.5}, {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 6, 1.0 / 3, 2.0 / 3}, {0, 0, 1}};
};

template <>
struct Matrices<4> {
  static constexpr int kA = 6;
  static constexpr float kBT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                      {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
  static constexpr float kAT[4][6] = {
      {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
  static constexpr double kG[6][3] = {{1.0 / 4, 0, 0},
                                      {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                      {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                      {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                      {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                      {0, 0, 1}};
};

// Stride 2, polyphase: y[i] = g0 d[2i] + g2 d[2i+2] (F(m, 2) on the even samples, points 0, 1, -1,
// 2 and infinity as needed) + g1 d[2i+1] (the odd samples as they are). 2m + 1 products per m
// outputs per dimension instead of 3m: (2m + 1)^2 / (9 m^2) of a direct convolution's multiplies.
// In each matrix the even part comes first, then the odd (generated and checked against a direct
// stride-2 correlation in exact arithmetic).
template <>
struct Matrices<2, 2> {
  static constexpr int kA = 5;
  static constexpr float kBT[5][5] = {
      {1, 0, 1, 0, 0}, {0, 0, 1, 0, 0}, {0, 0, 1, 0, 1}, {0, 1, 0, 0, 0}, {0, 0, 0, 1, 0}};
  static constexpr float kAT[2][5] = {{1, 1, 0, 1, 0}, {0, -1, 1, 0, 1}};
  static constexpr double kG[5][3] = {{1, 0, 0}, {-1, 0, 1}, {0, 0, 1}, {0, 1, 0}, {0, 1, 0}};
};

template <>
struct Matrices<3, 2> {
  static constexpr int kA = 7;
  static constexpr float kBT[7][7] = {{-1, 0, 0, 0, 1, 0, 0}, {0, 0, 1, 0, 1, 0, 0}, {0, 0, -1, 0, 1, 0, 0},
                                      {0, 0, -1, 0, 0, 0, 1}, {0, 1, 0, 0, 0, 0, 0}, {0, 0, 0, 1, 0, 0, 0},
                                      {0, 0, 0, 0, 0, 1, 0}};
  static constexpr float kAT[3][7] = {{1, 1, 1, 0, 1, 0, 0}, {0, 1, -1, 0, 0, 1, 0}, {0, 1, 1, 1, 0, 0, 1}};
  static constexpr double kG[7][3] = {{-1, 0, 0}, {0.5, 0, 0.5}, {0.5, 0, -0.5}, {0, 0, 1},
                                      {0, 1, 0},  {0, 1, 0},     {0, 1, 0}};
};

template <>
struct Matrices<4, 2> {
  static constexpr int kA = 9;
  static constexpr float kBT[9][9] = {
      {2, 0, -1, 0, -2, 0, 1, 0, 0}, {0, 0, -2, 0, -1, 0, 1, 0, 0}, {0, 0, 2, 0, -3, 0, 1, 0, 0},
      {0, 0, -1, 0, 0, 0, 1, 0, 0},  {0, 0, 2, 0, -1, 0, -2, 0, 1}, {0, 1, 0, 0, 0, 0, 0, 0, 0},
      {0, 0, 0, 1, 0, 0, 0, 0, 0},   {0, 0, 0, 0, 0, 1, 0, 0, 0},   {0, 0, 0, 0, 0, 0, 0, 1, 0}};
  static constexpr float kAT[4][9] = {{1, 1, 1, 1, 0, 1, 0, 0, 0},
                                      {0, 1, -1, 2, 0, 0, 1, 0, 0},
                                      {0, 1, 1, 4, 0, 0, 0, 1, 0},
                                      {0, 1, -1, 8, 1, 0, 0, 0, 1}};
  static constexpr double kG[9][3] = {
      {0.5, 0, 0}, {-0.5, 0, -0.5}, {-1.0 / 6, 0, 1.0 / 6}, {1.0 / 6, 0, 1.0 / 3}, {0, 0, 1}, {0, 1, 0}, {0, 1, 0},
      {0, 1, 0},   {0, 1, 0}};
};

}  // namespace clouddetect::onednn
