#!/usr/bin/env bash
# Builds the project twice (Debug) with sanitizers and runs the C++ test suite (the GoogleTest
# entries: every ctest entry except pytest_*, cli.*, deploy_* and web_*, which drive the binary,
# Docker or a browser) under each:
#   ASan+UBSan  -> ${SAN_BUILD_ROOT:-/work}/build-asan
#   TSan        -> ${SAN_BUILD_ROOT:-/work}/build-tsan
# oneDNN is left out of these (-DCLOUDDETECT_WITH_ONEDNN=OFF): its JIT and OpenMP runtime are not
# built with the sanitizers, which makes TSan report races inside the uninstrumented runtime. ASan
# and UBSan have no such trouble, so a third build runs the native backend's own tests under them:
#   ASan+UBSan, oneDNN -> ${SAN_BUILD_ROOT:-/work}/build-asan-onednn (layer and parity tests, each
#   with the CPU's ISA and held to AVX2: our Winograd, pooling and int8 paths on both)
# TSan suppressions (third-party code only, each explained): tests/reliability/tsan.supp.
#   tests/reliability/sanitizers.sh [asan|tsan|asan-onednn|all]   (default all)
# Env: SAN_JOBS (build jobs, default nproc), SAN_TIMEOUT (seconds per phase, default 2400),
#      CLOUDDETECT_SHARED (models and images for the tests, default ../shared).
# Exit status: 0 when every selected suite passes.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
which=${1:-all}
root=${SAN_BUILD_ROOT:-$(dirname "$repo")}
shared=${CLOUDDETECT_SHARED:-$(dirname "$repo")/shared}
jobs=${SAN_JOBS:-$(nproc)}
limit=${SAN_TIMEOUT:-2400}
exclude='^(pytest_|cli\.|deploy_|web_)'
status=0

# The build folders live beside the checkout, so two checkouts share them: a folder configured
# for another source tree (CMake refuses it) is removed and built again for this one.
claim_build_dir() {  # dir
  local home
  [ -f "$1/CMakeCache.txt" ] || return 0
  home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$1/CMakeCache.txt")
  if [ "$home" != "$repo" ]; then
    echo "   $1 was configured for $home: removing it"
    rm -rf "$1"
  fi
}

run_one() {  # name sanitizer
  local name=$1 sanitize=$2 dir="$root/build-$1" t0 t1 t2
  claim_build_dir "$dir"
  t0=$(date +%s)
  echo "== $name ($sanitize): configure + build in $dir"
  timeout "$limit" cmake -S "$repo" -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DCLOUDDETECT_SANITIZE="$sanitize" \
    -DCLOUDDETECT_WITH_ONEDNN=OFF -DCLOUDDETECT_SHARED="$shared" >"$dir.configure.log" 2>&1 \
    || { echo "$name: configure FAILED (see $dir.configure.log)"; tail -20 "$dir.configure.log"; return 1; }
  timeout "$limit" cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1 \
    || { echo "$name: build FAILED (see $dir.build.log)"; grep -m20 -E "error|Error" "$dir.build.log"; return 1; }
  t1=$(date +%s)
  echo "== $name: ctest -E '$exclude'"
  # halt_on_error: the first report fails the test; detect_leaks is on by default with ASan.
  if ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1 \
     UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$repo/tests/reliability/tsan.supp \
     timeout "$limit" ctest --test-dir "$dir" -E "$exclude" -j"$jobs" --timeout 600 --output-on-failure \
       >"$dir.ctest.log" 2>&1; then
    t2=$(date +%s)
    echo "$name: PASS - $(grep -E 'tests passed' "$dir.ctest.log" | tail -1) (build $((t1 - t0)) s, tests $((t2 - t1)) s)"
  else
    t2=$(date +%s)
    echo "$name: FAIL (build $((t1 - t0)) s, tests $((t2 - t1)) s) - see $dir.ctest.log"
    grep -E "tests passed|Failed|\*\*\*|SUMMARY: .*Sanitizer" "$dir.ctest.log" | head -40
    return 1
  fi
}

run_onednn() {
  local name=asan-onednn dir="$root/build-asan-onednn" t0 t1 t2 isa test failed=0
  claim_build_dir "$dir"
  t0=$(date +%s)
  echo "== $name (address,undefined): configure + build in $dir"
  timeout "$limit" cmake -S "$repo" -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DCLOUDDETECT_SANITIZE=address,undefined \
    -DCLOUDDETECT_WITH_ONEDNN=ON -DCLOUDDETECT_SHARED="$shared" >"$dir.configure.log" 2>&1 \
    || { echo "$name: configure FAILED (see $dir.configure.log)"; tail -20 "$dir.configure.log"; return 1; }
  timeout "$limit" cmake --build "$dir" -j"$jobs" --target onednn_layers_test onednn_parity_test \
    >"$dir.build.log" 2>&1 \
    || { echo "$name: build FAILED (see $dir.build.log)"; grep -m20 -E "error|Error" "$dir.build.log"; return 1; }
  t1=$(date +%s)
  : >"$dir.test.log"
  for isa in ALL AVX2; do  # ONEDNN_MAX_CPU_ISA: ALL is oneDNN's default (no cap)
    for test in onednn_layers_test onednn_parity_test; do
      echo "== $name: $test, ISA $isa" | tee -a "$dir.test.log"
      if ! env ONEDNN_MAX_CPU_ISA="$isa" \
          ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1 \
          UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 CLOUDDETECT_SHARED="$shared" \
          timeout "$limit" "$dir/src/backends/onednn/$test" >>"$dir.test.log" 2>&1; then
        echo "$name: $test FAILED with ISA $isa"
        failed=1
      fi
    done
  done
  t2=$(date +%s)
  if [ "$failed" = 0 ]; then
    echo "$name: PASS - $(grep -c '^\[       OK \]' "$dir.test.log") test runs (build $((t1 - t0)) s, tests $((t2 - t1)) s)"
  else
    echo "$name: FAIL - see $dir.test.log"
    grep -E "FAILED|SUMMARY: .*Sanitizer|runtime error" "$dir.test.log" | head -40
    return 1
  fi
}

case "$which" in
  asan) run_one asan address,undefined || status=1 ;;
  tsan) run_one tsan thread || status=1 ;;
  asan-onednn) run_onednn || status=1 ;;
  all) run_one asan address,undefined || status=1
       run_one tsan thread || status=1
       run_onednn || status=1 ;;
  *) echo "usage: $0 [asan|tsan|asan-onednn|all]" >&2; exit 2 ;;
esac
exit $status
