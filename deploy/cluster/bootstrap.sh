#!/usr/bin/env bash
# From an admin machine with SSH access (passwordless sudo) to fresh Ubuntu 22.04 VMs: builds
# the whole kubeadm cluster, 1 controller + N workers, and writes ./kubeconfig.
#
# usage: bootstrap.sh --controller USER@HOST --worker USER@HOST [--worker USER@HOST ...]
#                     [--model DIR [--image clouddetect:TAG]] [--advertise-address IP]
#                     [--public-ip IP] [--ssh-key FILE] [--kubeconfig-out FILE] [--dry-run]
#
# Steps: copy deploy/cluster/*.sh to each node, node-prepare.sh on each (firewall, Docker Engine
# with CRI on in its containerd, pinned kubeadm/kubelet/kubectl), control-plane-init.sh on the
# controller (kubeadm init, Flannel), `kubeadm join` on each worker, fetch the kubeconfig, wait
# until every node is Ready, label the workers; with --model, send this checkout's tracked files
# and the model to the controller, build the image there (build-image.sh) and import it into the
# controller's and each worker's containerd. --dry-run also prints what each node would run.
# Versions: DOCKER_MAJOR, CONTAINERD_MINOR, K8S_MINOR, *_PKG_VERSION, FLANNEL_VERSION (common.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$here/common.sh"

controller=""
workers=()
advertise=""
public_ip=""
kubeconfig_out="./kubeconfig"
model=""
image=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --controller) controller="$2"; shift 2 ;;
    --worker) workers+=("$2"); shift 2 ;;
    --advertise-address) advertise="$2"; shift 2 ;;
    --public-ip) public_ip="$2"; shift 2 ;;
    --ssh-key) SSH_KEY="$2"; shift 2 ;;
    --kubeconfig-out) kubeconfig_out="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --image) image="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ -n "$controller" ]] || die "--controller USER@HOST is required"
[[ ${#workers[@]} -ge 1 ]] || die "at least one --worker USER@HOST is required"
repo="$(cd "$here/../.." && pwd)"
src_dir=clouddetect-src # on the controller, in the admin user's home
if [[ -n "$model" ]]; then
  [[ -n "$image" ]] || image="$(manifest_image "$repo")"
  if [[ "$DRY_RUN" != 1 ]]; then
    [[ -d "$model" ]] || die "model folder $model not found"
    git -C "$repo" rev-parse --git-dir >/dev/null 2>&1 ||
      die "$repo is not a git checkout: clone the repository on the controller and run build-image.sh there"
  fi
fi

mapfile -t ssh_args < <(ssh_opts)
remote_dir=/tmp/clouddetect-cluster
scripts=(common.sh node-prepare.sh open-firewall.sh control-plane-init.sh)
# Versions travel to the nodes as environment for sudo.
remote_env="DOCKER_MAJOR=$DOCKER_MAJOR DOCKER_PKG_VERSION=$DOCKER_PKG_VERSION CONTAINERD_MINOR=$CONTAINERD_MINOR CONTAINERD_PKG_VERSION=$CONTAINERD_PKG_VERSION K8S_MINOR=$K8S_MINOR K8S_PKG_VERSION=$K8S_PKG_VERSION FLANNEL_VERSION=$FLANNEL_VERSION POD_CIDR=$POD_CIDR NODE_PORT=$NODE_PORT PAUSE_IMAGE=$PAUSE_IMAGE"

on() { local host="$1"; shift; run ssh "${ssh_args[@]}" "$host" "$@"; }

# nested_dry_run HOST CMD...: under --dry-run, what CMD (a dry run of a script) would do on HOST,
# each line prefixed with the host.
nested_dry_run() {
  local host="$1"; shift
  [[ "$DRY_RUN" == 1 ]] || return 0
  SUDO_USER="${host%@*}" DRY_RUN=1 "$@" 2>&1 | sed "s|$repo|~/$src_dir|g; s|^|    [$host] |"
}

# on_script HOST SCRIPT ARGS...: a copied script, run as root on HOST.
on_script() {
  local host="$1" script="$2"; shift 2
  on "$host" sudo env "$remote_env" bash "$remote_dir/$script" "$@"
  nested_dry_run "$host" bash "$here/$script" --dry-run "$@"
}

copy_scripts() {
  local host="$1" s files=()
  for s in "${scripts[@]}"; do files+=("$here/$s"); done
  on "$host" mkdir -p "$remote_dir"
  run scp "${ssh_args[@]}" "${files[@]}" "$host:$remote_dir/"
}

log "1/6 prepare the nodes"
copy_scripts "$controller"
on_script "$controller" node-prepare.sh --role control-plane
for w in "${workers[@]}"; do
  copy_scripts "$w"
  on_script "$w" node-prepare.sh --role worker
done

log "2/6 kubeadm init on $controller"
init_args=()
[[ -n "$advertise" ]] && init_args+=(--advertise-address "$advertise")
[[ -n "$public_ip" ]] && init_args+=(--public-ip "$public_ip")
on_script "$controller" control-plane-init.sh "${init_args[@]}"

log "3/6 join the workers"
if [[ "$DRY_RUN" == 1 ]]; then
  join_cmd="kubeadm join <controller>:6443 --token <token> --discovery-token-ca-cert-hash sha256:<hash>"
  on "$controller" sudo kubeadm token create --print-join-command
else
  join_cmd="$(ssh "${ssh_args[@]}" "$controller" sudo kubeadm token create --print-join-command)"
fi
for w in "${workers[@]}"; do
  # shellcheck disable=SC2086 # the join command is several words
  on "$w" sudo $join_cmd --cri-socket "$CRI_ENDPOINT"
done

log "4/6 kubeconfig -> $kubeconfig_out"
run_sh "ssh ${ssh_args[*]} $controller sudo cat /etc/kubernetes/admin.conf > $(printf '%q' "$kubeconfig_out") && chmod 600 $(printf '%q' "$kubeconfig_out")"
if [[ -n "$public_ip" ]]; then
  # admin.conf names the private address; reach the API server through the public one.
  run sed -i "s#server: https://.*:6443#server: https://$public_ip:6443#" "$kubeconfig_out"
fi

log "5/6 wait for every node, label the workers"
run kubectl --kubeconfig "$kubeconfig_out" wait --for=condition=Ready nodes --all --timeout=300s
for w in "${workers[@]}"; do
  if [[ "$DRY_RUN" == 1 ]]; then
    name="<hostname of $w>"
  else
    name="$(ssh "${ssh_args[@]}" "$w" hostname)"
  fi
  run kubectl --kubeconfig "$kubeconfig_out" label node "$name" node-role.kubernetes.io/worker= --overwrite
done
run kubectl --kubeconfig "$kubeconfig_out" get nodes -o wide

if [[ -z "$model" ]]; then
  log "6/6 skipped (no --model): build the image on the controller with build-image.sh (docs/DEPLOY.md)"
  log "cluster ready: export KUBECONFIG=$kubeconfig_out"
  exit 0
fi
log "6/6 the image: build it on $controller, import it into every node's containerd (k8s.io)"
q() { printf '%q' "$1"; }
model_name="$(basename "$(realpath -m "$model")")"
# The tracked files of this checkout (the Dockerfile's context, uncommitted edits included) and
# the model, into ~/$src_dir on the controller.
run_sh "git -C $(q "$repo") ls-files -z | tar -C $(q "$repo") --null --ignore-failed-read -T - -czf - | ssh ${ssh_args[*]} $controller 'rm -rf $src_dir && mkdir -p $src_dir/models && tar -xzf - -C $src_dir'"
run_sh "tar -C $(q "$(dirname "$(realpath -m "$model")")") -czf - $(q "$model_name") | ssh ${ssh_args[*]} $controller 'tar -xzf - -C $src_dir/models'"
on "$controller" bash "$src_dir/deploy/cluster/build-image.sh" --model "$src_dir/models/$model_name" --image "$image"
nested_dry_run "$controller" bash "$here/build-image.sh" --dry-run --model "$repo/models/$model_name" --image "$image"
# Controller -> this machine -> each worker: needs no SSH between the nodes.
load_args=(--from "$controller" --image "$image")
for w in "${workers[@]}"; do load_args+=(--node "$w"); done
[[ -n "${SSH_KEY:-}" ]] && load_args+=(--ssh-key "$SSH_KEY")
dry=()
[[ "$DRY_RUN" == 1 ]] && dry=(--dry-run)
"$here/load-image.sh" "${load_args[@]}" "${dry[@]}"
log "cluster ready, image $image on every node: export KUBECONFIG=$kubeconfig_out;" \
  "kubectl apply -k deploy/k8s/overlays/replicas-1 (docs/DEPLOY.md)"
