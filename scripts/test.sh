#!/usr/bin/env bash
# The README's second command: installs what the tests need, builds, runs the whole suite (ctest).
# Env: CLOUDDETECT_SHARED (models and images, default ../shared), CLOUDDETECT_SANITIZE=1 to also run
# the unit tests under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
export CLOUDDETECT_SHARED=${CLOUDDETECT_SHARED:-$(cd .. && pwd)/shared}
scripts/deps.sh test
scripts/build.sh -DCLOUDDETECT_SHARED="$CLOUDDETECT_SHARED" -DCLOUDDETECT_WARNINGS_AS_ERRORS=ON
cd build
ctest --output-on-failure --timeout 900 -j2
