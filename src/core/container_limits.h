// What the container (cgroup v1 or v2) allows this process: CPUs and memory.
#pragma once

#include <cstdint>

namespace clouddetect {

// CPUs this process may use: the cgroup CPU quota (v1 or v2) rounded up, bounded by the cores
// the scheduler gives us; at least 1. A Kubernetes pod limited to 0.5 CPU gets 1.
int available_cpus();

// Bytes of memory this process may use: the tightest cgroup memory limit (v2 memory.max, v1
// memory.limit_in_bytes) on the way up from its own cgroup, else the machine's physical memory.
std::int64_t available_memory_bytes();

// This process's resident set (VmRSS), in bytes; 0 when unknown.
std::int64_t resident_memory_bytes();

}  // namespace clouddetect
