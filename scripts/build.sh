#!/usr/bin/env bash
# Configures and builds build/clouddetect (CMakePresets.json's `release` preset). Extra arguments go
# to cmake's configure step. CMAKE_BUILD_PARALLEL_LEVEL: build jobs (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset release "$@" >/dev/null
cmake --build --preset release -j"${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
