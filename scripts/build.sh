#!/usr/bin/env bash
# Configures and builds build/clouddetect (Release). Extra arguments go to cmake's configure step.
# CMAKE_BUILD_PARALLEL_LEVEL: build jobs (default: all cores).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
