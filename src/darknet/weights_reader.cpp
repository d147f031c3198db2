#include "darknet/weights_reader.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>

#include "core/error.h"

namespace clouddetect::darknet {
namespace {

constexpr std::size_t kHeaderInts = 3;  // major, minor, revision

std::size_t conv_floats(const Layer& layer) {
  const auto& p = layer.convolutional;
  std::size_t n = static_cast<std::size_t>(p.filters);
  std::size_t per_filter = static_cast<std::size_t>(layer.input.c / p.groups) * p.size * p.size;
  return n * (p.batch_normalize ? 4 : 1) + n * per_filter;
}

std::size_t header_size(int32_t major, int32_t minor) {
  // darknet: "seen" is 64-bit from version 0.2 on, 32-bit before.
  // 64-bit arithmetic: the header comes from the file and may hold anything (found by fuzzing).
  bool wide_seen = static_cast<int64_t>(major) * 10 + minor >= 2;
  return kHeaderInts * sizeof(int32_t) + (wide_seen ? sizeof(uint64_t) : sizeof(int32_t));
}

}  // namespace

std::size_t expected_weights_size(const Model& model) {
  std::size_t floats = 0;
  for (const Layer& layer : model.layers) {
    if (layer.type == LayerType::kConvolutional) floats += conv_floats(layer);
  }
  return header_size(0, 2) + floats * sizeof(float);
}

namespace {

// The offset of the first float after the header `version` (at least kHeaderInts ints), checking
// that `size` bytes is exactly what the cfg needs.
std::size_t checked_weights_offset(const int32_t* version, std::size_t size, const std::string& source_name,
                                   const Model& model) {
  const std::size_t offset = header_size(version[0], version[1]);
  std::size_t floats = 0;
  for (const Layer& layer : model.layers) {
    if (layer.type == LayerType::kConvolutional) floats += conv_floats(layer);
  }
  const std::size_t expected = offset + floats * sizeof(float);
  if (size != expected) {
    throw Error(ErrorCode::kInvalidArgument, source_name + ": " + std::to_string(size) + " bytes, but " + model.name +
                                                 ".cfg needs exactly " + std::to_string(expected) +
                                                 " (truncated download or weights of another cfg?)");
  }
  return offset;
}

void check_header_fits(std::size_t size, const std::string& source_name) {
  if (size < kHeaderInts * sizeof(int32_t)) {
    throw Error(ErrorCode::kInvalidArgument,
                source_name + ": " + std::to_string(size) + " bytes is too short for a weights header");
  }
}

// Fills every convolution's weights in file order, `read(destination, bytes)` giving the next bytes.
void fill_weights(Model& model, const std::function<void(void*, std::size_t)>& read) {
  auto take = [&](std::vector<float>& out, std::size_t count) {
    out.resize(count);
    if (count > 0) read(out.data(), count * sizeof(float));
  };
  for (Layer& layer : model.layers) {
    if (layer.type != LayerType::kConvolutional) continue;
    const auto& p = layer.convolutional;
    auto& w = layer.weights;
    take(w.biases, p.filters);
    if (p.batch_normalize) {
      take(w.scales, p.filters);
      take(w.rolling_mean, p.filters);
      take(w.rolling_variance, p.filters);
    }
    take(w.weights, conv_floats(layer) - static_cast<std::size_t>(p.filters) * (p.batch_normalize ? 4 : 1));
  }
}

}  // namespace

void read_weights_bytes(const std::vector<char>& bytes, const std::string& source_name, Model& model) {
  check_header_fits(bytes.size(), source_name);
  int32_t version[kHeaderInts];
  std::memcpy(version, bytes.data(), sizeof(version));
  std::size_t offset = checked_weights_offset(version, bytes.size(), source_name, model);
  fill_weights(model, [&](void* destination, std::size_t count) {
    std::memcpy(destination, bytes.data() + offset, count);
    offset += count;
  });
}

// Straight from the file into the layers: a whole-file buffer beside them would double the peak.
void read_weights_file(const std::string& path, Model& model) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot open weights file " + path);
  const auto size = static_cast<std::size_t>(in.tellg());
  check_header_fits(size, path);
  in.seekg(0);
  int32_t version[kHeaderInts];
  in.read(reinterpret_cast<char*>(version), sizeof(version));
  in.seekg(static_cast<std::streamoff>(checked_weights_offset(version, size, path, model)));
  fill_weights(model, [&](void* destination, std::size_t count) {
    in.read(static_cast<char*>(destination), static_cast<std::streamsize>(count));
  });
  if (!in) throw Error(ErrorCode::kInvalidArgument, "cannot read weights file " + path);
}

void release_weights(Model& model) {
  for (Layer& layer : model.layers) std::vector<float>().swap(layer.weights.weights);
}

std::vector<char> serialize_weights(const Model& model) {
  std::vector<char> bytes(expected_weights_size(model));
  const int32_t version[kHeaderInts] = {0, 2, 0};
  std::memcpy(bytes.data(), version, sizeof(version));
  std::size_t offset = header_size(0, 2);  // "seen" stays 0
  auto put = [&](const std::vector<float>& values) {
    if (values.empty()) return;  // no batch norm: memcpy of an empty vector's null data() is undefined
    std::memcpy(bytes.data() + offset, values.data(), values.size() * sizeof(float));
    offset += values.size() * sizeof(float);
  };
  for (const Layer& layer : model.layers) {
    if (layer.type != LayerType::kConvolutional) continue;
    const auto& w = layer.weights;
    put(w.biases);
    put(w.scales);
    put(w.rolling_mean);
    put(w.rolling_variance);
    put(w.weights);
  }
  if (offset != bytes.size()) {
    throw Error(ErrorCode::kInternal, "serialize_weights: model " + model.name + " has no weights loaded");
  }
  return bytes;
}

}  // namespace clouddetect::darknet
