#!/usr/bin/env bash
# The README's first command: install, build, find the model, serve.
#   scripts/run.sh [--model DIR|ZIP] [any other `clouddetect serve` flag, e.g. --port 8080]
# The model is a folder (or yolo_tiny_configs.zip) with one .cfg, one .weights, one .names.
# Default: models/yolov3-tiny; missing official files are downloaded (sizes checked). Without network,
# it says so and falls back to a real model under $CLOUDDETECT_SHARED/models (default ../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
shared=${CLOUDDETECT_SHARED:-$repo/../shared}

model=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --model=*) model=${1#--model=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

scripts/deps.sh build
# Serving needs no tests (and so no GoogleTest): scripts/test.sh builds those.
scripts/build.sh -DCLOUDDETECT_BUILD_TESTS=OFF

say() { echo "run.sh: $*" >&2; }

# A zip (e.g. yolo_tiny_configs.zip) is unpacked into models/<name>/ once.
if [ -n "$model" ] && [ -f "$model" ] && [[ "$model" == *.zip ]]; then
  dest="models/$(basename "$model" .zip)"
  if [ ! -d "$dest" ]; then
    mkdir -p "$dest"
    unzip -q -j -o "$model" '*.cfg' '*.weights' '*.names' -d "$dest"
  fi
  model=$dest
fi

has_weights() { compgen -G "$1/*.weights" >/dev/null; }

fetch() {  # fetch URL DEST [EXPECTED_SIZE]
  local tmp="$2.part"
  curl -fsL --connect-timeout 10 -o "$tmp" "$1" 2>/dev/null || { rm -f "$tmp"; return 1; }
  if [ -n "${3:-}" ] && [ "$(stat -c %s "$tmp")" != "$3" ]; then
    say "$1: got $(stat -c %s "$tmp") bytes, expected $3"; rm -f "$tmp"; return 1
  fi
  mv "$tmp" "$2"
}

if [ -z "$model" ]; then
  model=models/yolov3-tiny
  mkdir -p "$model"
  base=https://raw.githubusercontent.com/pjreddie/darknet/master
  ok=1
  [ -f "$model/yolov3-tiny.cfg" ] || fetch "$base/cfg/yolov3-tiny.cfg" "$model/yolov3-tiny.cfg" || ok=0
  [ -f "$model/coco.names" ] || fetch "$base/data/coco.names" "$model/coco.names" || ok=0
  if [ $ok = 1 ] && ! has_weights "$model"; then
    say "downloading the official yolov3-tiny weights (35,434,956 bytes)"
    fetch https://pjreddie.com/media/files/yolov3-tiny.weights "$model/yolov3-tiny.weights" 35434956 || ok=0
  fi
  if [ $ok = 0 ]; then
    fallback=""
    for candidate in "$shared/models/yolov3-tiny" "$shared/models/yolo-fastest-1.1-xl" "$shared/models/yolo-fastest-1.1"; do
      if [ -d "$candidate" ] && has_weights "$candidate"; then fallback=$candidate; break; fi
    done
    [ -n "$fallback" ] || { say "cannot download yolov3-tiny (no network?) and no model under $shared/models; pass --model DIR"; exit 1; }
    say "cannot download yolov3-tiny (no network?); using $fallback instead"
    model=$fallback
  fi
fi

exec build/clouddetect serve --model "$model" "${args[@]}"
