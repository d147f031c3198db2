#include "core/container_limits.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>

namespace clouddetect {
namespace {

// The cgroup path of `controller` for this process ("" for cgroup v2's unified line).
std::string own_cgroup(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    auto first = line.find(':');
    auto second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::string controllers = line.substr(first + 1, second - first - 1);
    std::stringstream list(controllers);
    std::string item;
    while (std::getline(list, item, ',')) {
      if (item == controller) return line.substr(second + 1);
    }
    if (controller.empty() && controllers.empty()) return line.substr(second + 1);
  }
  return "/";
}

// Quota / period in CPUs, or 0 when unlimited or unknown. Walks up the hierarchy: a limit set on a
// parent (as Kubernetes does on the pod cgroup) applies to the children too.
double cgroup_cpu_limit() {
  double limit = 0;
  auto tighten = [&](double cpus) {
    if (cpus > 0 && (limit == 0 || cpus < limit)) limit = cpus;
  };
  for (std::string path = own_cgroup("cpu");; path = path.substr(0, path.rfind('/'))) {
    std::ifstream quota("/sys/fs/cgroup/cpu" + path + "/cpu.cfs_quota_us");
    std::ifstream period("/sys/fs/cgroup/cpu" + path + "/cpu.cfs_period_us");
    long q = -1, p = 0;
    if (quota >> q && period >> p && q > 0 && p > 0) tighten(static_cast<double>(q) / p);
    if (path.empty() || path == "/") break;
  }
  for (std::string path = own_cgroup("");; path = path.substr(0, path.rfind('/'))) {
    std::ifstream max("/sys/fs/cgroup" + path + "/cpu.max");
    std::string q;
    long p = 0;
    if (max >> q >> p && q != "max" && p > 0) tighten(std::stod(q) / p);
    if (path.empty() || path == "/") break;
  }
  return limit;
}

// The tightest memory limit in bytes on the way up from this process's cgroup; 0 = none. cgroup v1
// writes "no limit" as a huge number (about 2^63), v2 as "max".
std::int64_t cgroup_memory_limit() {
  constexpr std::int64_t kUnlimited = std::int64_t{1} << 60;
  std::int64_t limit = 0;
  auto tighten = [&](std::int64_t bytes) {
    if (bytes > 0 && bytes < kUnlimited && (limit == 0 || bytes < limit)) limit = bytes;
  };
  for (const auto& [controller, root, file] : {std::tuple{"memory", "/sys/fs/cgroup/memory", "memory.limit_in_bytes"},
                                               std::tuple{"", "/sys/fs/cgroup", "memory.max"}}) {
    for (std::string path = own_cgroup(controller);; path = path.substr(0, path.rfind('/'))) {
      std::ifstream in(std::string(root) + path + "/" + file);
      std::string value;
      if (in >> value && value != "max") tighten(std::stoll(value));
      if (path.empty() || path == "/") break;
    }
  }
  return limit;
}

}  // namespace

std::int64_t available_memory_bytes() {
  const std::int64_t physical = static_cast<std::int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  const std::int64_t limit = cgroup_memory_limit();
  return limit > 0 && (physical <= 0 || limit < physical) ? limit : physical;
}

std::int64_t resident_memory_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmRSS:   1234 kB"
  }
  return 0;
}

int available_cpus() {
  cpu_set_t set;
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cores = CPU_COUNT(&set);
  cores = std::max(cores, 1);
  double limit = cgroup_cpu_limit();
  if (limit > 0) cores = std::min(cores, static_cast<int>(std::ceil(limit)));
  return std::max(cores, 1);
}

}  // namespace clouddetect
