#include "api/base64.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "core/error.h"

namespace clouddetect::api {
namespace {

std::string decode_to_string(std::string_view text) {
  const std::vector<unsigned char> bytes = base64_decode(text);
  return std::string(bytes.begin(), bytes.end());
}

// The message of the Error thrown by base64_decode(text), or "" when it did not throw.
std::string decode_error(std::string_view text) {
  try {
    base64_decode(text);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    return e.what();
  }
  return "";
}

struct Vector {
  const char* plain;
  const char* encoded;
};
// RFC 4648, section 10.
constexpr Vector kRfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

TEST(Base64, EncodesRfc4648Vectors) {
  for (const Vector& v : kRfc4648) EXPECT_EQ(base64_encode(std::string_view(v.plain)), v.encoded);
}

TEST(Base64, DecodesRfc4648Vectors) {
  for (const Vector& v : kRfc4648) EXPECT_EQ(decode_to_string(v.encoded), v.plain) << v.encoded;
}

TEST(Base64, DecodesWithoutPadding) {
  EXPECT_EQ(decode_to_string("Zg"), "f");
  EXPECT_EQ(decode_to_string("Zm8"), "fo");
  EXPECT_EQ(decode_to_string("Zm9vYg"), "foob");
  EXPECT_EQ(decode_to_string("Zm9vYmE"), "fooba");
}

TEST(Base64, IgnoresWhitespace) {
  EXPECT_EQ(decode_to_string(" Zm9v\r\nYmFy\n"), "foobar");
  EXPECT_EQ(decode_to_string("Zm9vYg==\r\n"), "foob");
  EXPECT_EQ(decode_to_string("Zm9vY g = ="), "foob");
  EXPECT_EQ(decode_to_string("Zm\t9v"), "foo");
  EXPECT_EQ(decode_to_string(" \r\n "), "");
}

TEST(Base64, AcceptsDataUrlPrefix) {
  EXPECT_EQ(decode_to_string("data:image/jpeg;base64,Zm9vYmFy"), "foobar");
  EXPECT_EQ(decode_to_string("data:image/png;base64,Zm9vYg=="), "foob");
  EXPECT_EQ(decode_to_string("DATA:image/PNG;BASE64,Zm8="), "fo");
  EXPECT_EQ(decode_to_string("data:;base64,Zg"), "f");
  EXPECT_EQ(decode_to_string("data:image/png;base64,"), "");
}

TEST(Base64, RejectsDataUrlThatIsNotBase64) {
  EXPECT_NE(decode_error("data:image/png,Zm9v").find("not base64-encoded"), std::string::npos);
  EXPECT_NE(decode_error("data:image/png;base64Zm9v").find("','"), std::string::npos);
}

TEST(Base64, RejectsInvalidCharacterWithPosition) {
  EXPECT_EQ(decode_error("Zm9v*mFy"), "invalid base64: invalid character '*' at position 4");
  EXPECT_EQ(decode_error("Zm9v-_"), "invalid base64: invalid character '-' at position 4");
  EXPECT_EQ(decode_error(std::string_view("Zm\0v", 4)), "invalid base64: invalid character byte 0x00 at position 2");
  EXPECT_EQ(decode_error("Zm9v\xc3\xa9"), "invalid base64: invalid character byte 0xc3 at position 4");
  // Positions count from the start of the text, data URL prefix included.
  EXPECT_EQ(decode_error("data:image/png;base64,Zm9v!"), "invalid base64: invalid character '!' at position 26");
}

TEST(Base64, RejectsIncorrectPadding) {
  EXPECT_NE(decode_error("Zg=").find("incorrect padding at position 2"), std::string::npos);
  EXPECT_NE(decode_error("Zm8=="), "");
  EXPECT_NE(decode_error("Zm9v="), "");
  EXPECT_NE(decode_error("Zm9v===="), "");
  EXPECT_NE(decode_error("="), "");
  EXPECT_NE(decode_error("Zg==Zg=="), "");
  EXPECT_NE(decode_error("Zg==Zm9v").find("data after padding at position 4"), std::string::npos);
  EXPECT_NE(decode_error("Zm=9"), "");
}

TEST(Base64, RejectsTruncatedGroup) {
  EXPECT_NE(decode_error("Z").find("truncated"), std::string::npos);
  EXPECT_NE(decode_error("Zm9vY").find("truncated"), std::string::npos);
  EXPECT_NE(decode_error("Zm9vY==="), "");
}

TEST(Base64, RoundTripsRandomBytes) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> byte(0, 255);
  for (std::size_t size = 0; size < 300; ++size) {
    std::vector<unsigned char> data(size);
    for (auto& b : data) b = static_cast<unsigned char>(byte(rng));
    const std::string encoded = base64_encode(data.data(), data.size());
    EXPECT_EQ(encoded.size(), (size + 2) / 3 * 4);
    EXPECT_EQ(base64_decode(encoded), data) << "size " << size;
    // Without padding too.
    const std::string unpadded = encoded.substr(0, encoded.find('='));
    EXPECT_EQ(base64_decode(unpadded), data) << "size " << size;
  }
}

TEST(Base64, RoundTripsEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  const std::string encoded = base64_encode(all);
  EXPECT_EQ(decode_to_string(encoded), all);
  EXPECT_EQ(encoded.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="),
            std::string::npos);
}

}  // namespace
}  // namespace clouddetect::api
