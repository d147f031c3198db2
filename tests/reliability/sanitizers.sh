#!/usr/bin/env bash
# Builds the project with sanitizers (CMakePresets.json: Debug, build folders inside the checkout)
# and runs the C++ test suite (the GoogleTest entries: every ctest entry except pytest_*, cli.*,
# deploy_* and web_*, which drive the binary, Docker or a browser) under each:
#   ASan+UBSan  -> preset asan, build-asan/
#   TSan        -> preset tsan, build-tsan/
# oneDNN is left out of these (-DCLOUDDETECT_WITH_ONEDNN=OFF): its JIT and OpenMP runtime are not
# built with the sanitizers, which makes TSan report races inside the uninstrumented runtime. ASan
# and UBSan have no such trouble, so a third build runs the native backend's own tests under them:
#   ASan+UBSan, oneDNN -> preset dev, build-dev/ (layer and parity tests, each with the CPU's ISA
#   and held to AVX2: our Winograd, pooling and int8 paths on both)
# TSan suppressions (third-party code only, each explained): tests/reliability/tsan.supp.
#   tests/reliability/sanitizers.sh [asan|tsan|asan-onednn|all]   (default all)
# Env: SAN_JOBS (build jobs, default nproc), SAN_TIMEOUT (seconds per phase, default 2400),
#      CLOUDDETECT_SHARED (models and images for the tests, default ../shared).
# Exit status: 0 when every selected suite passes.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
which=${1:-all}
shared=${CLOUDDETECT_SHARED:-$(dirname "$repo")/shared}
jobs=${SAN_JOBS:-$(nproc)}
limit=${SAN_TIMEOUT:-2400}
exclude='^(pytest_|cli\.|deploy_|web_)'
# Under TSan also the OpenCV importer parity tests: single-threaded on our side, but OpenCV DNN runs
# their layers on Debian's uninstrumented TBB pool, and TSan reports (then suppresses, tsan.supp) every
# byte the pool's concat and slice layers copy: minutes per model instead of a second. ASan runs them.
tsan_exclude='^(pytest_|cli\.|deploy_|web_|[A-Za-z]+/ImporterParity\.)'
status=0

run_one() {  # preset (asan or tsan)
  local name=$1 dir="$repo/build-$1" t0 t1 t2 skip=$exclude
  [ "$name" = tsan ] && skip=$tsan_exclude
  t0=$(date +%s)
  echo "== $name: configure + build in $dir (preset $name)"
  mkdir -p "$dir"
  timeout "$limit" cmake --preset "$name" -DCLOUDDETECT_SHARED="$shared" >"$dir/sanitizers-configure.log" 2>&1 \
    || { echo "$name: configure FAILED (see $dir/sanitizers-configure.log)"; tail -20 "$dir/sanitizers-configure.log"; return 1; }
  timeout "$limit" cmake --build "$dir" -j"$jobs" >"$dir/sanitizers-build.log" 2>&1 \
    || { echo "$name: build FAILED (see $dir/sanitizers-build.log)"; grep -m20 -E "error|Error" "$dir/sanitizers-build.log"; return 1; }
  t1=$(date +%s)
  echo "== $name: ctest -E '$skip'"
  # halt_on_error: the first report fails the test; detect_leaks is on by default with ASan.
  if ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1 \
     UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$repo/tests/reliability/tsan.supp \
     timeout "$limit" ctest --test-dir "$dir" -E "$skip" -j"$jobs" --timeout 600 --output-on-failure \
       >"$dir/sanitizers-ctest.log" 2>&1; then
    t2=$(date +%s)
    echo "$name: PASS - $(grep -E 'tests passed' "$dir/sanitizers-ctest.log" | tail -1) (build $((t1 - t0)) s, tests $((t2 - t1)) s)"
  else
    t2=$(date +%s)
    echo "$name: FAIL (build $((t1 - t0)) s, tests $((t2 - t1)) s) - see $dir/sanitizers-ctest.log"
    grep -E "tests passed|Failed|\*\*\*|SUMMARY: .*Sanitizer" "$dir/sanitizers-ctest.log" | head -40
    return 1
  fi
}

run_onednn() {
  local name=asan-onednn dir="$repo/build-dev" t0 t1 t2 isa test failed=0
  t0=$(date +%s)
  echo "== $name (address,undefined): configure + build in $dir (preset dev)"
  mkdir -p "$dir"
  timeout "$limit" cmake --preset dev -DCLOUDDETECT_SHARED="$shared" >"$dir/sanitizers-configure.log" 2>&1 \
    || { echo "$name: configure FAILED (see $dir/sanitizers-configure.log)"; tail -20 "$dir/sanitizers-configure.log"; return 1; }
  timeout "$limit" cmake --build "$dir" -j"$jobs" --target onednn_layers_test onednn_parity_test \
    >"$dir/sanitizers-build.log" 2>&1 \
    || { echo "$name: build FAILED (see $dir/sanitizers-build.log)"; grep -m20 -E "error|Error" "$dir/sanitizers-build.log"; return 1; }
  t1=$(date +%s)
  : >"$dir/sanitizers-test.log"
  for isa in ALL AVX2; do  # ONEDNN_MAX_CPU_ISA: ALL is oneDNN's default (no cap)
    for test in onednn_layers_test onednn_parity_test; do
      echo "== $name: $test, ISA $isa" | tee -a "$dir/sanitizers-test.log"
      if ! env ONEDNN_MAX_CPU_ISA="$isa" \
          ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1 \
          UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 CLOUDDETECT_SHARED="$shared" \
          timeout "$limit" "$dir/src/backends/onednn/$test" >>"$dir/sanitizers-test.log" 2>&1; then
        echo "$name: $test FAILED with ISA $isa"
        failed=1
      fi
    done
  done
  t2=$(date +%s)
  if [ "$failed" = 0 ]; then
    echo "$name: PASS - $(grep -c '^\[       OK \]' "$dir/sanitizers-test.log") test runs (build $((t1 - t0)) s, tests $((t2 - t1)) s)"
  else
    echo "$name: FAIL - see $dir/sanitizers-test.log"
    grep -E "FAILED|SUMMARY: .*Sanitizer|runtime error" "$dir/sanitizers-test.log" | head -40
    return 1
  fi
}

case "$which" in
  asan) run_one asan || status=1 ;;
  tsan) run_one tsan || status=1 ;;
  asan-onednn) run_onednn || status=1 ;;
  all) run_one asan || status=1
       run_one tsan || status=1
       run_onednn || status=1 ;;
  *) echo "usage: $0 [asan|tsan|asan-onednn|all]" >&2; exit 2 ;;
esac
exit $status
