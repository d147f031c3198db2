// Base64 (RFC 4648, standard alphabet) for images carried in JSON.
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace clouddetect::api {

// Decodes `text` to bytes. Accepts an optional `data:<media type>;base64,` prefix (data URL, the
// prefix is matched case-insensitively), ignores spaces, tabs, CR and LF anywhere, and accepts
// input with or without `=` padding; when padding is present it must be correct (1 or 2 `=`
// completing a 4-character group, nothing but whitespace after it). Bits left over in the last
// group are ignored. Throws Error{kInvalidArgument} naming the offending character and its byte
// position in `text` (URL-safe `-`/`_` are rejected as well).
std::vector<unsigned char> base64_decode(std::string_view text);

// Encodes bytes with the standard alphabet and `=` padding, no line breaks.
std::string base64_encode(const void* data, std::size_t size);
inline std::string base64_encode(std::string_view bytes) { return base64_encode(bytes.data(), bytes.size()); }

}  // namespace clouddetect::api
