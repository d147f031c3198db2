#include "main/commands.h"
#include "core/error.h"
namespace clouddetect {
int run_serve(ServeOptions) { throw Error(ErrorCode::kInternal, "serve: not wired yet"); }
}  // namespace clouddetect
