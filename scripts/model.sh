#!/usr/bin/env bash
# Chooses the model folder, for scripts/run.sh and scripts/image.sh alike; prints its path (relative
# to the repository) on stdout, what it did on stderr.
#   scripts/model.sh [DIR|ZIP]
# DIR: a folder with exactly one .cfg, one .weights, one .names. ZIP (e.g. yolo_tiny_configs.zip):
# unpacked once into models/<name>/. Neither: models/yolov3-tiny, its missing official files
# downloaded (the weights' size checked); without network it says so in one line and falls back to
# a real model under $CLOUDDETECT_SHARED/models (default ../shared/models).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
shared=${CLOUDDETECT_SHARED:-$repo/../shared}
model=${1:-}
say() { echo "model.sh: $*" >&2; }

# A zip (e.g. yolo_tiny_configs.zip) is unpacked into models/<name>/ once.
if [ -n "$model" ] && [ -f "$model" ] && [[ "$model" == *.zip ]]; then
  dest="models/$(basename "$model" .zip)"
  if [ ! -d "$dest" ]; then
    mkdir -p "$dest"
    unzip -q -j -o "$model" '*.cfg' '*.weights' '*.names' -d "$dest"
  fi
  model=$dest
fi
if [ -n "$model" ]; then
  [ -d "$model" ] || { say "$model is neither a folder nor a .zip"; exit 1; }
  echo "$model"
  exit 0
fi

has_weights() { compgen -G "$1/*.weights" >/dev/null; }

fetch() {  # fetch URL DEST [EXPECTED_SIZE]
  local tmp="$2.part"
  curl -fsL --connect-timeout 10 --max-time 600 -o "$tmp" "$1" 2>/dev/null || { rm -f "$tmp"; return 1; }
  if [ -n "${3:-}" ] && [ "$(stat -c %s "$tmp")" != "$3" ]; then
    say "$1: got $(stat -c %s "$tmp") bytes, expected $3"; rm -f "$tmp"; return 1
  fi
  mv "$tmp" "$2"
}

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
if [ $ok = 1 ]; then
  echo "$model"
  exit 0
fi
for candidate in "$shared/models/yolov3-tiny" "$shared/models/yolo-fastest-1.1-xl" "$shared/models/yolo-fastest-1.1"; do
  if [ -d "$candidate" ] && has_weights "$candidate"; then
    say "cannot download yolov3-tiny (no network?); using $candidate instead"
    echo "$candidate"
    exit 0
  fi
done
say "cannot download yolov3-tiny (no network?) and no model under $shared/models; pass --model DIR"
exit 1
