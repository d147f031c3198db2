#!/usr/bin/env bash
# Gets the CloudDetect image from a Docker Engine into the nodes' containerd, without a registry
# or with one.
#
# usage: load-image.sh --image clouddetect:0.1.0 [--local] [--node USER@HOST ...]
#                      [--from USER@HOST] [--ssh-key FILE] [--dry-run]
#        load-image.sh --image clouddetect:0.1.0 --registry REGISTRY/PATH [--dry-run]
#
#   --local   import into this machine's containerd (the controller, after build-image.sh)
#   --node    import into that node's containerd, over SSH
#   --from    the Docker Engine holding the image is on that host (default: this machine's);
#             e.g. from your workstation, --from the controller --node each worker
# Without a registry: `docker save IMAGE | [ssh NODE] sudo ctr -n k8s.io images import -` for
# each target (docker keeps its images apart from containerd's k8s.io namespace, the one the
# kubelet uses, even on a node where both share one containerd), then `crictl inspecti` checks
# that the kubelet sees it. The Deployment's imagePullPolicy IfNotPresent then uses it; the
# component deploy/k8s/components/image-pull-never makes a node without it fail at once.
# With a registry: docker tag + push, then point the manifests at it with an overlay:
#   images: [{name: clouddetect, newName: REGISTRY/PATH/clouddetect, newTag: TAG}].
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

image=""
registry=""
from=""
local_import=0
nodes=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --image) image="$2"; shift 2 ;;
    --local) local_import=1; shift ;;
    --node) nodes+=("$2"); shift 2 ;;
    --from) from="$2"; shift 2 ;;
    --registry) registry="$2"; shift 2 ;;
    --ssh-key) SSH_KEY="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ -n "$image" ]] || die "--image NAME:TAG is required"
[[ -n "$registry" || $local_import == 1 || ${#nodes[@]} -ge 1 ]] ||
  die "give --local and/or --node USER@HOST (no registry), or --registry"
[[ "$image" == *:* && "$image" != *:latest ]] ||
  die "tag the image with a version (not :latest): the kubelet would always pull :latest"

mapfile -t ssh_args < <(ssh_opts)
sudo="$(sudo_prefix)"
qimage="$(printf '%q' "$image")"
# The command that writes the image as a tar stream, here or on --from.
if [[ -n "$from" ]]; then
  docker_cmd="ssh ${ssh_args[*]} $from sudo docker"
else
  docker_cmd="${sudo}docker"
fi
if [[ "$DRY_RUN" != 1 ]]; then
  bash -c "$docker_cmd image inspect $qimage" >/dev/null 2>&1 ||
    die "image $image not found in the Docker Engine ${from:-of this machine} (build it: deploy/cluster/build-image.sh)"
fi

if [[ -n "$registry" ]]; then
  target="${registry%/}/${image##*/}"
  run_sh "$docker_cmd tag $qimage $(printf '%q' "$target")"
  run_sh "$docker_cmd push $(printf '%q' "$target")"
  log "pushed $target; set it in an overlay: images: [{name: clouddetect, newName: ${target%:*}, newTag: ${target##*:}}]"
  exit 0
fi

# The kubelet resolves `clouddetect:0.1.0` as docker.io/library/clouddetect:0.1.0, the name ctr gives it.
if [[ $local_import == 1 ]]; then
  log "$image -> this machine's containerd (k8s.io)"
  run_sh "$docker_cmd save $qimage | ${sudo}ctr -n k8s.io images import -"
  as_root crictl inspecti "$image"
fi
for node in "${nodes[@]}"; do
  log "$image -> $node"
  run_sh "$docker_cmd save $qimage | ssh ${ssh_args[*]} $node sudo ctr -n k8s.io images import -"
  run ssh "${ssh_args[@]}" "$node" sudo crictl inspecti "$image"
done
log "loaded $image into $((local_import + ${#nodes[@]})) containerd(s)"
