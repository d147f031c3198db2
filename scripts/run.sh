#!/usr/bin/env bash
# The README's first command: install, build, find the model, serve.
#   scripts/run.sh [--model DIR|ZIP] [any other `clouddetect serve` flag, e.g. --port 8080]
# The model is a folder (or yolo_tiny_configs.zip) with one .cfg, one .weights, one .names, chosen by
# scripts/model.sh (default: the official yolov3-tiny, downloaded, else a fallback it names).
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."

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

# A relative --model is relative to where the user ran this, not to the repository.
if [ -n "$model" ] && [[ "$model" != /* ]]; then model=$caller_dir/$model; fi
model=$(scripts/model.sh "$model")
exec build/clouddetect serve --model "$model" "${args[@]}"
