// The backend registry and what backends share, on the real backends built in.
#include "backends/backend.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"

namespace clouddetect {
namespace {

TEST(RegistryTest, ListsEachBackendOnceWithTheDefaultLast) {
  const std::vector<std::string> names = available_backends();
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names.front(), "opencv");
  EXPECT_EQ(default_backend(), names.back());
  for (std::size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(std::count(names.begin(), names.end(), names[i]), 1) << names[i];
  }
}

TEST(RegistryTest, UnknownBackendNamesTheAvailableOnes) {
  try {
    create_backend("cuda", std::make_shared<darknet::Model>(), BackendOptions{});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("available: opencv"), std::string::npos) << e.what();
  }
}

TEST(RegistryTest, RefusesAPrecisionTheBackendDoesNotRun) {
  BackendOptions options;
  options.precision = Precision::kInt8;
  try {
    create_backend("opencv", std::make_shared<darknet::Model>(), options);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()), "opencv backend supports precision fp32, not int8");
  }
}

TEST(PrecisionTest, ParsesItsOwnNamesOnly) {
  EXPECT_EQ(parse_precision("fp32"), Precision::kFp32);
  EXPECT_EQ(parse_precision("int8"), Precision::kInt8);
  EXPECT_STREQ(to_string(Precision::kInt8), "int8");
  EXPECT_THROW(parse_precision("fp16"), Error);
  EXPECT_THROW(parse_precision("FP32"), Error);
}

}  // namespace
}  // namespace clouddetect
