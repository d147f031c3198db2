#!/usr/bin/env bash
# Same speed before and after a change, on a busy machine: the user CPU seconds of `bench --backend native`
# (model load, warm-up, N forwards) for two builds, alternated ROUNDS times per model and ISA. CPU time is
# nearly independent of how long the process waited for a core, unlike wall-clock medians.
#   tools/bench/cpu_time_before_after.sh BEFORE_BIN AFTER_BIN MODEL_DIR...   (env ROUNDS, default 5; ITERATIONS, default 100)
# Prints one line per run: model ISA round binary user-seconds; then the mean ratio per model and ISA.
set -euo pipefail
[[ $# -ge 3 ]] || { sed -n '2,6p' "$0" >&2; exit 2; }
before=$1 after=$2
shift 2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for model in "$@"; do
  for isa in ALL AVX2; do
    for round in $(seq "${ROUNDS:-5}"); do
      for which in before after; do
        bin=$before
        [[ $which == after ]] && bin=$after
        # bash's `time` with TIMEFORMAT=%U: the user CPU seconds of the command
        seconds=$({ TIMEFORMAT=%U; time ONEDNN_MAX_CPU_ISA=$isa "$bin" bench --model "$model" --backend native \
          --iterations "${ITERATIONS:-100}" --warmup 3 >/dev/null 2>&1; } 2>&1 | tail -n 1)
        echo "$(basename "$model") $isa $round $which $seconds" | tee -a "$out"
      done
    done
  done
done
awk '{k = $1 " " $2; s[k, $4] += $5; keys[k] = 1}
     END {for (k in keys) printf "%s: after/before %.3f\n", k, s[k, "after"] / s[k, "before"]}' "$out"
