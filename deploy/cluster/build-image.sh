#!/usr/bin/env bash
# Builds the CloudDetect image with the project's Dockerfile (deploy/Dockerfile) on this machine's
# Docker Engine (the controller, after node-prepare.sh), imports it into this machine's containerd
# (namespace k8s.io) and, with --node, into the workers' (load-image.sh). Run it in a checkout of
# the repository, as the admin user (it uses sudo for docker and ctr; SSH to the workers needs
# your key or agent: `ssh -A` to the controller).
#
# usage: build-image.sh --model DIR [--image clouddetect:TAG] [--node USER@HOST ...]
#                       [--no-local] [--ssh-key FILE] [--dry-run] [-- DOCKER-BUILD-ARGS...]
#   --model   a model folder (one .cfg, one .weights, one .names); copied under models/ first
#             when it lies outside the checkout (the build context)
#   --image   default clouddetect:<newTag of deploy/k8s/base/kustomization.yaml>, the tag the
#             manifests run
#   --no-local  do not import into this machine's containerd
# Prints `docker image ls` of the image and `crictl inspecti` on every node it reached.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$here/common.sh"
repo="$(cd "$here/../.." && pwd)"

model=""
image=""
local_import=1
load_args=()
build_args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --image) image="$2"; shift 2 ;;
    --node) load_args+=(--node "$2"); shift 2 ;;
    --no-local) local_import=0; shift ;;
    --ssh-key) load_args+=(--ssh-key "$2"); shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; build_args=("$@"); break ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ -n "$model" ]] || die "--model DIR is required (a folder with one .cfg, one .weights, one .names)"
[[ -n "$image" ]] || image="$(manifest_image "$repo")"
[[ $local_import == 1 || ${#load_args[@]} -gt 0 ]] || die "--no-local without --node loads the image nowhere"
if [[ "$DRY_RUN" != 1 ]]; then
  command -v docker >/dev/null || die "docker not found: run deploy/cluster/node-prepare.sh on this machine first"
  [[ -d "$model" ]] || die "model folder $model not found"
fi

# The build context is the checkout: a model elsewhere is copied to models/<name>.
model_abs="$(realpath -m "$model")"
if [[ "$model_abs" == "$repo"/* ]]; then
  model_dir="${model_abs#"$repo"/}"
else
  model_dir="models/$(basename "$model")"
  run mkdir -p "$repo/models"
  run cp -rT "$model_abs" "$repo/$model_dir"
fi

sudo="$(sudo_prefix)"
extra=""
[[ ${#build_args[@]} -gt 0 ]] && extra="$(printf ' %q' "${build_args[@]}")"
log "docker build $image (MODEL_DIR=$model_dir) in $repo"
run_sh "cd $(printf '%q' "$repo") && ${sudo}docker build -f deploy/Dockerfile --build-arg MODEL_DIR=$(printf '%q' "$model_dir") -t $(printf '%q' "$image")$extra ."
as_root docker image ls "$image"

[[ $local_import == 1 ]] && load_args+=(--local)
dry=()
[[ "$DRY_RUN" == 1 ]] && dry=(--dry-run)
"$here/load-image.sh" --image "$image" "${load_args[@]}" "${dry[@]}"
