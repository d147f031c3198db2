#!/usr/bin/env bash
# The README's second command: installs what the tests need, builds, runs the whole suite (ctest).
# Env: CLOUDDETECT_SHARED (models and images, default ../shared); CLOUDDETECT_QUICK=1 skips the
# sanitizer builds and the fuzzing (they take ~15 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
export CLOUDDETECT_SHARED=${CLOUDDETECT_SHARED:-$(cd .. && pwd)/shared}
scripts/deps.sh test
scripts/build.sh -DCLOUDDETECT_BUILD_TESTS=ON -DCLOUDDETECT_SHARED="$CLOUDDETECT_SHARED" -DCLOUDDETECT_WARNINGS_AS_ERRORS=ON
if [ "${CLOUDDETECT_QUICK:-0}" != 1 ]; then
  # The C++ tests again under ASan+UBSan and under TSan, and each libFuzzer target for 20 s.
  tests/reliability/sanitizers.sh all
  tools/fuzz/run.sh 20
fi
# The whole suite last, so its summary is the last thing printed.
cd build
ctest --output-on-failure --timeout 900 -j2
