#include "web/assets.h"

#include "web/assets_data.h"

namespace clouddetect::web {

const std::vector<Asset>& assets() {
  static const std::vector<Asset> table = {
      {"/", "text/html; charset=utf-8", kIndexHtml},
      {"/app.css", "text/css; charset=utf-8", kAppCss},
      {"/app.js", "text/javascript; charset=utf-8", kAppJs},
      {"/openapi.yaml", "application/yaml; charset=utf-8", kOpenapiYaml},
  };
  return table;
}

}  // namespace clouddetect::web
