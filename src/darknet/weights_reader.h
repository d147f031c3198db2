// Reads and writes Darknet .weights files for a parsed Model.
#pragma once

#include <string>
#include <vector>

#include "darknet/model.h"

namespace clouddetect::darknet {

// Number of bytes a .weights file for `model` must have (header included).
std::size_t expected_weights_size(const Model& model);

// Fills model.layers[i].weights for every convolutional layer. The file size must match the cfg
// exactly: a truncated or oversized file is an Error{kInvalidArgument} naming both sizes.
void read_weights_bytes(const std::vector<char>& bytes, const std::string& source_name, Model& model);
void read_weights_file(const std::string& path, Model& model);

// The .weights bytes of `model` (header version 0.2.0), e.g. for a backend that imports Darknet
// files itself. read_weights_bytes(serialize_weights(m)) restores m's weights exactly.
std::vector<char> serialize_weights(const Model& model);

// Frees every convolution's weights (biases and batch norm stay: they are small), for the owner of
// a model whose backends have all made their own copies: the raw ones would only double the
// footprint. serialize_weights and new native layouts of `model` fail after this.
void release_weights(Model& model);

}  // namespace clouddetect::darknet
