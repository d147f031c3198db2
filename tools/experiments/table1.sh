#!/bin/sh
# Table 1 side by side (issue 15): the seed's procedure for one service, with no client timeout and with a
# 10 s timeout, for 1 and 2 local pods (0.5 CPU / 512 MiB each), yolov3-tiny 416 with synthetic weights that
# `clouddetect make-weights` writes once into OUT/model (both services read the same file).
#
#   sudo tools/experiments/table1.sh flask OUT         # the Flask + OpenCV reference ($CLOUDDETECT_SHARED/bench)
#   sudo tools/experiments/table1.sh clouddetect OUT   # build/clouddetect (native engine, fp32)
#   tools/experiments/table1.sh report OUT             # one table and one set of plots, a row per service and timeout
#
# Env: PODS (default 1,2), STEP_PER_POD (users added per ramp step per pod, default 4; the seed's is 1),
# CONFIRM_ATTEMPTS (confirmations, each 5% fewer users, before a cell is left empty; default 4),
# CLOUDDETECT_BIN, CLOUDDETECT_SHARED. Every run appends `uptime` to OUT/load.log (the machine is shared).
# A rerun of the same command resumes (the runner skips finished runs).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared=${CLOUDDETECT_SHARED:-$repo/../shared}
bin=${CLOUDDETECT_BIN:-$repo/build/clouddetect}
[ $# -eq 2 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
what=$1
out=$(mkdir -p "$2" && cd "$2" && pwd)
runner="/usr/bin/python3 $here/run_experiment.py"

if [ "$what" = report ]; then
  set --
  for dir in "$out"/clouddetect-* "$out"/flask-*; do [ -f "$dir/results.json" ] && set -- "$@" "$dir"; done
  exec $runner report "$@" --out "$out/both"
fi

model=$out/model
if [ ! -f "$model/yolov3-tiny.weights" ]; then
  [ -x "$bin" ] || { echo "table1.sh: $bin is missing: build it with scripts/build.sh" >&2; exit 2; }
  mkdir -p "$model"
  cp "$shared/models/yolov3-tiny/yolov3-tiny.cfg" "$shared/models/yolov3-tiny/coco.names" "$model/"
  "$bin" make-weights "$model/yolov3-tiny.cfg" "$model/yolov3-tiny.weights"
fi

case $what in
  flask)
    cmd="env MODEL_CFG=$model/yolov3-tiny.cfg MODEL_WEIGHTS=$model/yolov3-tiny.weights MODEL_NAMES=$model/coco.names"
    cmd="$cmd INPUT_SIZE=416 CONF_THRESHOLD=0.5 NMS_THRESHOLD=0.45 HOST=127.0.0.1 PORT={port}"
    cmd="$cmd /usr/bin/python3 $shared/bench/peer_flask_opencv/app.py"
    name=peer_flask_opencv ;;
  clouddetect)
    cmd="$bin serve --model {model} --host 127.0.0.1 --port 0 --port-file {port_file} --backend native --precision fp32"
    cmd="$cmd --conf 0.5 --nms 0.45"
    name=clouddetect ;;
  *) echo "table1.sh: unknown service '$what' (flask, clouddetect or report)" >&2; exit 2 ;;
esac

for timeout in 0 10; do
  dir=$out/$what-timeout$timeout
  echo "$(date -u +%FT%TZ) $what timeout=$timeout start: $(uptime)" >>"$out/load.log"
  # shellcheck disable=SC2086  # $runner is a command and its script
  $runner run --target local --location master --service-name "$name" --service-cmd "$cmd" --model "$model" \
    --out "$dir" --pods "${PODS:-1,2}" --repetitions 1 --request-timeout "$timeout" \
    --ramp-step-per-pod "${STEP_PER_POD:-4}" --ramp-max-users 1000 --confirm-max-attempts "${CONFIRM_ATTEMPTS:-4}"
  echo "$(date -u +%FT%TZ) $what timeout=$timeout end: $(uptime)" >>"$out/load.log"
done
