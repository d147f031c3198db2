#include "http/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>

namespace clouddetect::http {
namespace {

double open_fd_count() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the descriptor of the listing itself
}

// Seconds since the epoch when the machine booted ("btime" in /proc/stat).
double boot_time() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

void sample(std::string& out, const char* name, const char* type, const char* help, double value) {
  char number[64];
  const auto end = std::to_chars(number, number + sizeof number, value).ptr;
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
         std::string(number, end) + "\n";
}

}  // namespace

ProcessStats ProcessStats::read() {
  ProcessStats stats;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may contain spaces), from field 3 on.
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14 || i == 15) stats.cpu_seconds += std::stod(field) / ticks;  // utime, stime
    if (i == 22) stats.start_time_seconds = boot_time() + std::stod(field) / ticks;
    if (i == 24) stats.resident_memory_bytes = std::stod(field) * page;
  }
  stats.open_fds = open_fd_count();
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) stats.max_fds = static_cast<double>(limit.rlim_cur);
  return stats;
}

std::string ProcessStats::render() const {
  std::string out;
  sample(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", resident_memory_bytes);
  sample(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", cpu_seconds);
  sample(out, "process_open_fds", "gauge", "Number of open file descriptors.", open_fds);
  sample(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.", max_fds);
  sample(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
         start_time_seconds);
  return out;
}

}  // namespace clouddetect::http
