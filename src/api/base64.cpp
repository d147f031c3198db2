#include "api/base64.h"

#include <array>
#include <cstdint>
#include <cstdio>

#include "core/error.h"

namespace clouddetect::api {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::int8_t kInvalid = -1;
constexpr std::int8_t kSkip = -2;  // whitespace
constexpr std::int8_t kPad = -3;

constexpr std::array<std::int8_t, 256> make_table() {
  std::array<std::int8_t, 256> table{};
  for (auto& v : table) v = kInvalid;
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
  table[' '] = kSkip;
  table['\t'] = kSkip;
  table['\r'] = kSkip;
  table['\n'] = kSkip;
  table['='] = kPad;
  return table;
}
constexpr std::array<std::int8_t, 256> kTable = make_table();

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

std::string describe_char(unsigned char c) {
  char buf[32];
  if (c >= 0x20 && c < 0x7f && c != '\'') {
    std::snprintf(buf, sizeof buf, "'%c'", c);
  } else {
    std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
  }
  return buf;
}

[[noreturn]] void fail(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, "invalid base64: " + message);
}

// Length of a `data:...;base64,` prefix, 0 if there is none.
std::size_t data_url_prefix_length(std::string_view text) {
  if (!starts_with_nocase(text, "data:")) return 0;
  const std::size_t comma = text.find(',');
  if (comma == std::string_view::npos) fail("data URL without ',' before the payload");
  constexpr std::string_view kMarker = ";base64";
  const std::string_view header = text.substr(0, comma);
  if (header.size() < kMarker.size() || !starts_with_nocase(header.substr(header.size() - kMarker.size()), kMarker)) {
    fail("data URL is not base64-encoded (expected ';base64,' before the payload)");
  }
  return comma + 1;
}

}  // namespace

std::vector<unsigned char> base64_decode(std::string_view text) {
  const std::size_t start = data_url_prefix_length(text);
  std::vector<unsigned char> out;
  out.reserve((text.size() - start) / 4 * 3 + 3);

  std::uint32_t accumulator = 0;
  int symbols = 0;  // symbols in the current 4-character group
  std::size_t pads = 0;
  std::size_t first_pad_pos = 0;
  for (std::size_t i = start; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::int8_t v = kTable[c];
    if (v >= 0) {
      if (pads > 0) {
        fail("data after padding at position " + std::to_string(i));
      }
      accumulator = (accumulator << 6) | static_cast<std::uint32_t>(v);
      if (++symbols == 4) {
        out.push_back(static_cast<unsigned char>(accumulator >> 16));
        out.push_back(static_cast<unsigned char>(accumulator >> 8));
        out.push_back(static_cast<unsigned char>(accumulator));
        accumulator = 0;
        symbols = 0;
      }
    } else if (v == kSkip) {
      continue;
    } else if (v == kPad) {
      if (pads == 0) first_pad_pos = i;
      ++pads;
    } else {
      fail("invalid character " + describe_char(c) + " at position " + std::to_string(i));
    }
  }

  if (symbols == 1) fail("truncated input (a single character in the last group)");
  if (pads > 0) {
    // Padding must complete the last group exactly: "xx==" or "xxx=".
    const std::size_t expected = symbols == 0 ? 0 : static_cast<std::size_t>(4 - symbols);
    if (pads != expected) {
      fail("incorrect padding at position " + std::to_string(first_pad_pos) + " (" + std::to_string(pads) +
           " '=' after " + std::to_string(symbols) + " characters of the last group)");
    }
  }
  if (symbols == 2) {
    out.push_back(static_cast<unsigned char>(accumulator >> 4));
  } else if (symbols == 3) {
    out.push_back(static_cast<unsigned char>(accumulator >> 10));
    out.push_back(static_cast<unsigned char>(accumulator >> 2));
  }
  return out;
}

std::string base64_encode(const void* data, std::size_t size) {
  const auto* in = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const std::uint32_t n = (std::uint32_t{in[i]} << 16) | (std::uint32_t{in[i + 1]} << 8) | in[i + 2];
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  if (const std::size_t rest = size - i; rest > 0) {
    std::uint32_t n = std::uint32_t{in[i]} << 16;
    if (rest == 2) n |= std::uint32_t{in[i + 1]} << 8;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

}  // namespace clouddetect::api
