#!/usr/bin/env bash
# Creates the cluster on the controller (after node-prepare.sh --role control-plane): kubeadm
# init with Flannel's pod CIDR, kubeconfig for the invoking user, Flannel, and the join command.
# Run on the controller, as root.
#
# usage: control-plane-init.sh [--advertise-address IP] [--public-ip IP] [--dry-run]
#   --advertise-address  the controller's private (VCN) address; default: kubeadm's choice
#   --public-ip          added to the API server certificate, for kubectl from outside the VCN
#
# Why Flannel, not Calico: the experiment needs pod-to-pod traffic and a NodePort, not
# NetworkPolicy or BGP. Flannel's VXLAN needs one UDP port (8472) opened in the security list;
# Calico's default IP-in-IP needs IP protocol 4 allowed in OCI's security lists and brings an
# operator and more moving parts.
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

advertise=""
public_ip=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --advertise-address) advertise="$2"; shift 2 ;;
    --public-ip) public_ip="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
require_root

if [[ "$DRY_RUN" == 1 ]]; then
  k8s_version="<kubeadm version -o short>"
else
  k8s_version="$(kubeadm version -o short)"
fi
# --cri-socket: Docker's containerd, named rather than detected (one runtime, never dockerd's socket).
init_args=(init --kubernetes-version "$k8s_version" --pod-network-cidr "$POD_CIDR" --cri-socket "$CRI_ENDPOINT")
[[ -n "$advertise" ]] && init_args+=(--apiserver-advertise-address "$advertise")
[[ -n "$public_ip" ]] && init_args+=(--apiserver-cert-extra-sans "$public_ip")

log "kubeadm ${init_args[*]}"
run kubeadm "${init_args[@]}"

export KUBECONFIG=/etc/kubernetes/admin.conf
user="${SUDO_USER:-root}"
home="$(getent passwd "$user" | cut -d: -f6)" || home=""
[[ -n "$home" ]] || { [[ "$user" == root ]] && home=/root || home="/home/$user"; }
log "kubeconfig for $user in $home/.kube/config"
run install -d -m 0700 -o "$user" "$home/.kube"
run install -m 0600 -o "$user" /etc/kubernetes/admin.conf "$home/.kube/config"

log "Flannel $FLANNEL_VERSION (pod network $POD_CIDR)"
run kubectl apply -f "https://github.com/flannel-io/flannel/releases/download/$FLANNEL_VERSION/kube-flannel.yml"
node_name="$(hostname)"
[[ "$DRY_RUN" == 1 ]] && node_name="<hostname>"
run kubectl wait --for=condition=Ready "node/$node_name" --timeout=300s
run kubectl -n kube-flannel rollout status daemonset/kube-flannel-ds --timeout=300s

log "join command for the workers (valid 24 h; bootstrap.sh runs it on each worker):"
run kubeadm token create --print-join-command
