#include "web/assets.h"

#include <gtest/gtest.h>

#include <set>

namespace clouddetect::web {
namespace {

const Asset* find(const std::string& path) {
  for (const Asset& a : assets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

TEST(WebAssets, ServesThePageItsScriptsAndTheOpenApiDescription) {
  std::set<std::string> paths;
  for (const Asset& a : assets()) {
    EXPECT_TRUE(paths.insert(a.path).second) << "duplicate " << a.path;
    EXPECT_EQ(a.path.front(), '/');
    EXPECT_FALSE(a.body.empty()) << a.path;
    EXPECT_FALSE(a.content_type.empty()) << a.path;
  }
  EXPECT_EQ(paths, (std::set<std::string>{"/", "/app.css", "/app.js", "/openapi.yaml"}));
}

TEST(WebAssets, BodiesAreTheWholeFiles) {
  const Asset* page = find("/");
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(page->body.substr(0, 15), "<!DOCTYPE html>");
  EXPECT_NE(page->body.find("src=\"app.js\""), std::string_view::npos);
  EXPECT_EQ(page->body.find('\0'), std::string_view::npos);
  EXPECT_EQ(page->body.back(), '\n');
  const Asset* spec = find("/openapi.yaml");
  ASSERT_NE(spec, nullptr);
  EXPECT_EQ(spec->body.substr(0, 8), "openapi:");
}

}  // namespace
}  // namespace clouddetect::web
