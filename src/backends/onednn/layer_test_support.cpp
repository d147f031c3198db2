#include "backends/onednn/layer_test_support.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace clouddetect::onednn::layer_test {

std::vector<float> random_vector(std::size_t n, unsigned seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

float activate(float x, Activation a) {
  switch (a) {
    case Activation::kLinear:
      return x;
    case Activation::kLeaky:
      return x > 0 ? x : 0.1f * x;
    case Activation::kRelu:
      return x > 0 ? x : 0;
    case Activation::kLogistic:
      return 1.0f / (1.0f + std::exp(-x));
    case Activation::kMish:
      return x * std::tanh(std::log1p(std::exp(x)));
  }
  return x;
}

void expect_close(const std::vector<float>& actual, const std::vector<float>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  float worst = 0;
  std::size_t worst_at = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    float err = std::abs(actual[i] - expected[i]) / std::max(1.0f, std::abs(expected[i]));
    if (err > worst) worst = err, worst_at = i;
  }
  EXPECT_LE(worst, kTolerance) << "at " << worst_at << ": " << actual[worst_at] << " vs " << expected[worst_at];
}

Layer make_conv_layer(const ConvCase& k, unsigned seed) {
  Layer layer;
  layer.type = darknet::LayerType::kConvolutional;
  auto& p = layer.convolutional;
  p = {k.filters, k.size, k.stride, k.pad ? k.size / 2 : 0, k.groups, k.batch_normalize, k.activation};
  layer.input = {k.c, k.h, k.w};
  layer.output = {k.filters, (k.h + 2 * p.padding - k.size) / k.stride + 1,
                  (k.w + 2 * p.padding - k.size) / k.stride + 1};
  const std::size_t n = static_cast<std::size_t>(k.filters);
  const float bound = std::sqrt(3.0f / static_cast<float>(k.c / k.groups * k.size * k.size));
  layer.weights.weights = random_vector(n * (k.c / k.groups) * k.size * k.size, seed, -bound, bound);
  layer.weights.biases = random_vector(n, seed + 1);
  if (k.batch_normalize) {
    layer.weights.scales = random_vector(n, seed + 2, 0.5f, 1.5f);
    layer.weights.rolling_mean = random_vector(n, seed + 3, -0.2f, 0.2f);
    layer.weights.rolling_variance = random_vector(n, seed + 4, 0.01f, 2.0f);
  }
  return layer;
}

std::vector<float> conv_reference(const Layer& layer, const std::vector<float>& in) {
  const auto& p = layer.convolutional;
  const auto& wt = layer.weights;
  const Shape i = layer.input, o = layer.output;
  const int per_group_in = i.c / p.groups, per_group_out = p.filters / p.groups;
  std::vector<float> out(static_cast<std::size_t>(o.size()));
  for (int f = 0; f < p.filters; ++f) {
    const int g = f / per_group_out;
    for (int oy = 0; oy < o.h; ++oy) {
      for (int ox = 0; ox < o.w; ++ox) {
        double sum = 0;
        for (int ci = 0; ci < per_group_in; ++ci) {
          for (int ky = 0; ky < p.size; ++ky) {
            for (int kx = 0; kx < p.size; ++kx) {
              const int iy = oy * p.stride - p.padding + ky, ix = ox * p.stride - p.padding + kx;
              if (iy < 0 || iy >= i.h || ix < 0 || ix >= i.w) continue;
              sum += static_cast<double>(in[(static_cast<std::size_t>(g * per_group_in + ci) * i.h + iy) * i.w + ix]) *
                     wt.weights[((static_cast<std::size_t>(f) * per_group_in + ci) * p.size + ky) * p.size + kx];
            }
          }
        }
        float v = static_cast<float>(sum);
        if (p.batch_normalize) {
          v = (v - wt.rolling_mean[f]) / std::sqrt(wt.rolling_variance[f] + 0.000001f) * wt.scales[f];
        }
        v += wt.biases[f];
        out[(static_cast<std::size_t>(f) * o.h + oy) * o.w + ox] = activate(v, p.activation);
      }
    }
  }
  return out;
}

std::vector<float> max_pool_2x2(const std::vector<float>& in, int c, int h, int w) {
  std::vector<float> out(static_cast<std::size_t>(c) * (h / 2) * (w / 2));
  for (int k = 0; k < c; ++k) {
    for (int y = 0; y < h / 2; ++y) {
      for (int x = 0; x < w / 2; ++x) {
        auto at = [&](int dy, int dx) { return in[(static_cast<std::size_t>(k) * h + 2 * y + dy) * w + 2 * x + dx]; };
        out[(static_cast<std::size_t>(k) * (h / 2) + y) * (w / 2) + x] =
            std::max(std::max(at(0, 0), at(0, 1)), std::max(at(1, 0), at(1, 1)));
      }
    }
  }
  return out;
}

}  // namespace clouddetect::onednn::layer_test
