#!/usr/bin/env bash
# Builds the container image with the model chosen as scripts/run.sh chooses it (scripts/model.sh:
# the official yolov3-tiny when it can be downloaded or is in models/, else the fallback it names).
#   scripts/image.sh [--model DIR|ZIP] [--tag clouddetect:0.1.0] [any other `docker build` option]
# No registry reachable for debian:bookworm-slim? It makes the base with deploy/docker/make-base-image.sh
# (debootstrap). Docker and debootstrap: scripts/deps.sh docker.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
model=""
tag=clouddetect:0.1.0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --tag | -t) tag=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
if [ -n "$model" ] && [[ "$model" != /* ]]; then model=$caller_dir/$model; fi

command -v docker >/dev/null || { echo "image.sh: no docker; install it with scripts/deps.sh docker" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "image.sh: the Docker daemon does not answer (start it, e.g. systemctl start docker)" >&2; exit 1; }
model=$(scripts/model.sh "$model")
# The build context is this folder: a model from elsewhere is copied under models/ (never committed).
case "$(realpath "$model")" in
  "$PWD"/*) model=$(realpath --relative-to=. "$model") ;;
  *)
    dest=models/$(basename "$model")
    if [ "$(realpath "$model")" != "$(realpath -m "$dest")" ]; then
      rm -rf "$dest" && mkdir -p models && cp -r "$model" "$dest"
    fi
    model=$dest
    ;;
esac
if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1 && ! docker pull debian:bookworm-slim >/dev/null 2>&1; then
  echo "image.sh: debian:bookworm-slim cannot be pulled: making it with debootstrap" >&2
  deploy/docker/make-base-image.sh
fi
echo "image.sh: docker build -f deploy/Dockerfile --build-arg MODEL_DIR=$model -t $tag ." >&2
DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build -f deploy/Dockerfile --build-arg "MODEL_DIR=$model" -t "$tag" "${args[@]}" .
