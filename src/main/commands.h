// The subcommands; each returns the process exit code and throws Error for main() to report.
#pragma once

#include "main/options.h"

namespace clouddetect {

int run_serve(ServeOptions options);
int run_detect(const DetectOptions& options);
int run_bench(const BenchOptions& options);
int run_calibrate(const CalibrateOptions& options);
int run_make_weights(const std::string& cfg_path, const std::string& out_path, unsigned seed);

}  // namespace clouddetect
