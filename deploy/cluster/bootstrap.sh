#!/usr/bin/env bash
# From an admin machine with SSH access (passwordless sudo) to fresh Ubuntu 22.04 VMs: builds
# the whole kubeadm cluster, 1 controller + N workers, and writes ./kubeconfig.
#
# usage: bootstrap.sh --controller USER@HOST --worker USER@HOST [--worker USER@HOST ...]
#                     [--advertise-address IP] [--public-ip IP] [--ssh-key FILE]
#                     [--kubeconfig-out FILE] [--dry-run]
#
# Steps: copy deploy/cluster/*.sh to each node, node-prepare.sh on each (containerd, pinned
# kubeadm/kubelet/kubectl, firewall), control-plane-init.sh on the controller (kubeadm init,
# Flannel), `kubeadm join` on each worker, label the workers, fetch the kubeconfig, wait until
# every node is Ready. Versions: K8S_MINOR, K8S_PKG_VERSION, FLANNEL_VERSION (common.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$here/common.sh"

controller=""
workers=()
advertise=""
public_ip=""
kubeconfig_out="./kubeconfig"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --controller) controller="$2"; shift 2 ;;
    --worker) workers+=("$2"); shift 2 ;;
    --advertise-address) advertise="$2"; shift 2 ;;
    --public-ip) public_ip="$2"; shift 2 ;;
    --ssh-key) SSH_KEY="$2"; shift 2 ;;
    --kubeconfig-out) kubeconfig_out="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ -n "$controller" ]] || die "--controller USER@HOST is required"
[[ ${#workers[@]} -ge 1 ]] || die "at least one --worker USER@HOST is required"

mapfile -t ssh_args < <(ssh_opts)
remote_dir=/tmp/clouddetect-cluster
scripts=(common.sh node-prepare.sh open-firewall.sh control-plane-init.sh)
# Versions travel to the nodes as environment for sudo.
remote_env="K8S_MINOR=$K8S_MINOR K8S_PKG_VERSION=$K8S_PKG_VERSION FLANNEL_VERSION=$FLANNEL_VERSION POD_CIDR=$POD_CIDR NODE_PORT=$NODE_PORT"

on() { local host="$1"; shift; run ssh "${ssh_args[@]}" "$host" "$@"; }

copy_scripts() {
  local host="$1" s files=()
  for s in "${scripts[@]}"; do files+=("$here/$s"); done
  on "$host" mkdir -p "$remote_dir"
  run scp "${ssh_args[@]}" "${files[@]}" "$host:$remote_dir/"
}

log "1/5 prepare the nodes"
copy_scripts "$controller"
on "$controller" sudo env "$remote_env" bash "$remote_dir/node-prepare.sh" --role control-plane
for w in "${workers[@]}"; do
  copy_scripts "$w"
  on "$w" sudo env "$remote_env" bash "$remote_dir/node-prepare.sh" --role worker
done

log "2/5 kubeadm init on $controller"
init_args=()
[[ -n "$advertise" ]] && init_args+=(--advertise-address "$advertise")
[[ -n "$public_ip" ]] && init_args+=(--public-ip "$public_ip")
on "$controller" sudo env "$remote_env" bash "$remote_dir/control-plane-init.sh" "${init_args[@]}"

log "3/5 join the workers"
if [[ "$DRY_RUN" == 1 ]]; then
  join_cmd="kubeadm join <controller>:6443 --token <token> --discovery-token-ca-cert-hash sha256:<hash>"
  on "$controller" sudo kubeadm token create --print-join-command
else
  join_cmd="$(ssh "${ssh_args[@]}" "$controller" sudo kubeadm token create --print-join-command)"
fi
for w in "${workers[@]}"; do
  # shellcheck disable=SC2086 # the join command is several words
  on "$w" sudo $join_cmd
done

log "4/5 kubeconfig -> $kubeconfig_out"
run_sh "ssh ${ssh_args[*]} $controller sudo cat /etc/kubernetes/admin.conf > $(printf '%q' "$kubeconfig_out") && chmod 600 $(printf '%q' "$kubeconfig_out")"
if [[ -n "$public_ip" ]]; then
  # admin.conf names the private address; reach the API server through the public one.
  run sed -i "s#server: https://.*:6443#server: https://$public_ip:6443#" "$kubeconfig_out"
fi

log "5/5 wait for every node, label the workers"
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
log "cluster ready: export KUBECONFIG=$kubeconfig_out; next: load-image.sh, then docs/DEPLOY.md"
