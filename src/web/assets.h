// The demo web page and the OpenAPI description, compiled into the binary (see CMakeLists.txt).
// assets() is a table built once at static-initialisation time and never changed: safe to read
// from any thread; the bodies live as long as the program.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace clouddetect::web {

struct Asset {
  std::string path;          // GET route, e.g. "/" or "/openapi.yaml"
  std::string content_type;  // e.g. "text/html; charset=utf-8"
  std::string_view body;     // static storage
};

// Every static route of the web UI: "/", "/app.css", "/app.js", "/openapi.yaml".
const std::vector<Asset>& assets();

}  // namespace clouddetect::web
