#!/bin/bash
# serve_memory.sh BINARY MODEL_DIR [SERVE ARGS...]: peak resident memory of `serve` (one worker) to
# ready plus four coco128 detections; prints the HTTP statuses, the ready log's footprint, the peak
# (/usr/bin/time) and any refusal. POD=NAME runs it in a 0.5 CPU / 512 MiB cgroup
# ($CLOUDDETECT_SHARED/bench/pod.sh NAME; root) and prints the pod's peak and OOM kills too.
set -u
binary=$1 model=$2
shift 2
shared=${CLOUDDETECT_SHARED:-$(dirname "$0")/../../../shared}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pod=()
[ -n "${POD:-}" ] && pod=("$shared/bench/pod.sh" "$POD" --)
"${pod[@]}" /usr/bin/time -f "peak_rss_mib=%M exit=%x" -o "$work/time" "$binary" serve --model "$model" --port 0 \
  --port-file "$work/port" --workers 1 "$@" >"$work/log" 2>&1 &
server=$!
for _ in $(seq 600); do [ -f "$work/port" ] && break; sleep 0.2; done
port=$(cat "$work/port" 2>/dev/null)
for _ in $(seq 1200); do
  curl -sf "localhost:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.5
done
for stem in 000000000009 000000000025 000000000030 000000000034; do
  printf '{"id":"%s","image":"%s"}' "$stem" "$(base64 -w0 "$shared/data/coco128/images/$stem.jpg")" >"$work/request"
  curl -s -o /dev/null -w "%{http_code} " -H 'Content-Type: application/json' --data-binary @"$work/request" \
    "localhost:$port/api/object_detection"
done
echo
grep -o '"footprint_mib":"[0-9]*"' "$work/log"
pkill -TERM -P "$server"
wait "$server"
# %M is in KiB
awk -F'[= ]' '/peak_rss_mib/ {printf "peak_rss_mib=%d exit=%s\n", $2 / 1024, $4} /signal/' "$work/time"
if [ -n "${POD:-}" ]; then "$shared/bench/pod.sh" --stat "$POD"; "$shared/bench/pod.sh" --rm "$POD"; fi
grep '^clouddetect:' "$work/log"
