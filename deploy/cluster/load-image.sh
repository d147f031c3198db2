#!/usr/bin/env bash
# Gets the CloudDetect image onto the cluster's nodes, without a registry or with one.
#
# usage: load-image.sh --image clouddetect:0.1.0 --node USER@HOST [--node USER@HOST ...]
#                      [--ssh-key FILE] [--dry-run]
#        load-image.sh --image clouddetect:0.1.0 --registry REGISTRY/PATH [--dry-run]
#
# Without a registry: `docker save IMAGE | ssh NODE sudo ctr -n k8s.io images import -` on each
# node (the k8s.io namespace is the one the kubelet's containerd uses), then `crictl images` to
# check. Load every node that may run a pod: the workers (and the controller only if it is
# untainted). The Deployment's imagePullPolicy IfNotPresent then uses the loaded image; the
# component deploy/k8s/components/image-pull-never makes a node without it fail at once.
# With a registry: docker tag + push, then point the manifests at it:
#   (cd deploy/k8s/overlays/replicas-4 && kubectl kustomize edit ...) or an overlay with
#   images: [{name: clouddetect, newName: REGISTRY/PATH/clouddetect, newTag: TAG}].
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

image=""
registry=""
nodes=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --image) image="$2"; shift 2 ;;
    --node) nodes+=("$2"); shift 2 ;;
    --registry) registry="$2"; shift 2 ;;
    --ssh-key) SSH_KEY="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ -n "$image" ]] || die "--image NAME:TAG is required"
[[ -n "$registry" || ${#nodes[@]} -ge 1 ]] || die "give --node USER@HOST (no registry) or --registry"
[[ "$image" == *:* && "$image" != *:latest ]] ||
  die "tag the image with a version (not :latest): the kubelet would always pull :latest"
if [[ "$DRY_RUN" != 1 ]]; then
  docker image inspect "$image" >/dev/null 2>&1 || die "image $image not found in the local Docker"
fi

if [[ -n "$registry" ]]; then
  target="${registry%/}/${image##*/}"
  run docker tag "$image" "$target"
  run docker push "$target"
  log "pushed $target; set it in an overlay: images: [{name: clouddetect, newName: ${target%:*}, newTag: ${target##*:}}]"
  exit 0
fi

mapfile -t ssh_args < <(ssh_opts)
for node in "${nodes[@]}"; do
  log "$image -> $node"
  run_sh "docker save $(printf '%q' "$image") | ssh ${ssh_args[*]} $node sudo ctr -n k8s.io images import -"
  # The kubelet resolves `clouddetect:0.1.0` as docker.io/library/clouddetect:0.1.0.
  run ssh "${ssh_args[@]}" "$node" sudo crictl inspecti "$image"
done
log "loaded $image on ${#nodes[@]} node(s)"
