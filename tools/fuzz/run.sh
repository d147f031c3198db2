#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (+ASan+UBSan) and runs each for SECONDS (default 60).
#   tools/fuzz/run.sh [SECONDS]
# Seeds: fuzz/corpus/<target>/ (committed). New inputs go to a scratch copy; crashes are written to
# build-fuzz/crashes/ and fail the run: turn each into a regression test before fixing it.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
cmake --preset fuzz >/dev/null   # CMakePresets.json: clang, ASan+UBSan, build-fuzz/
cmake --build --preset fuzz -j"$(nproc)" >/dev/null
mkdir -p build-fuzz/crashes
status=0
for target in fuzz_detect_request fuzz_model_files fuzz_decode; do
  binary=$(find build-fuzz -name "$target" -type f -perm -u+x | head -1)
  scratch=$(mktemp -d)
  cp -r "fuzz/corpus/$target/." "$scratch/"
  if "$binary" "$scratch" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix=build-fuzz/crashes/"$target"- -print_final_stats=1 >"build-fuzz/$target.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "build-fuzz/$target.log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz $target: PASS, $runs executions in ${seconds}s"
  else
    echo "fuzz $target: FAIL (see build-fuzz/$target.log and build-fuzz/crashes/)"; tail -30 "build-fuzz/$target.log"
    status=1
  fi
  rm -rf "$scratch"
done
exit $status
