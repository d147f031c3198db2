// What every Prometheus client library exports about its process (process_* metrics), read from
// /proc on each scrape. Linux only.
#pragma once

#include <string>

namespace clouddetect::http {

struct ProcessStats {
  double resident_memory_bytes = 0;
  double cpu_seconds = 0;  // user + system
  double open_fds = 0;
  double max_fds = 0;
  double start_time_seconds = 0;  // since the Unix epoch

  static ProcessStats read();
  // The process_* metrics in Prometheus text format.
  std::string render() const;
};

}  // namespace clouddetect::http
