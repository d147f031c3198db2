#pragma once

namespace clouddetect {

// CPUs this process may use: the cgroup CPU quota (v1 or v2) rounded up, bounded by the cores
// the scheduler gives us; at least 1. A Kubernetes pod limited to 0.5 CPU gets 1.
int available_cpus();

}  // namespace clouddetect
