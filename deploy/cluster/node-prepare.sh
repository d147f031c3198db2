#!/usr/bin/env bash
# Takes a fresh Ubuntu 22.04 VM to a kubeadm-ready node: swap off, kernel modules and sysctls,
# containerd (systemd cgroups), kubeadm/kubelet/kubectl of the pinned version (held), firewall.
# Run on each node, as root; bootstrap.sh does it over SSH.
#
# usage: node-prepare.sh --role control-plane|worker [--k8s-version 1.30.x-y.z] [--dry-run]
#
# Why containerd, not Docker Engine + cri-dockerd: the kubelet talks CRI to containerd
# directly; Docker would add two daemons (dockerd, cri-dockerd) and an adapter maintained
# outside Kubernetes, to end at the same containerd. The nodes need no Docker: images come in
# with `ctr -n k8s.io images import` (load-image.sh) or from a registry.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$here/common.sh"

role=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --role) role="$2"; shift 2 ;;
    --k8s-version) K8S_PKG_VERSION="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ "$role" == control-plane || "$role" == worker ]] || die "--role control-plane|worker is required"
require_root
require_ubuntu
export DEBIAN_FRONTEND=noninteractive

log "1/6 swap off (the kubelet refuses to start with swap on)"
run swapoff -a
run sed -ri '/\sswap\s/s/^#?/#/' /etc/fstab

log "2/6 kernel modules and sysctls for bridged pod traffic"
write_file /etc/modules-load.d/kubernetes.conf <<'CONF'
overlay
br_netfilter
CONF
run modprobe overlay
run modprobe br_netfilter
write_file /etc/sysctl.d/99-kubernetes.conf <<'CONF'
net.bridge.bridge-nf-call-iptables  = 1
net.bridge.bridge-nf-call-ip6tables = 1
net.ipv4.ip_forward                 = 1
CONF
run sysctl --system

log "3/6 containerd from Ubuntu's archive, with the systemd cgroup driver (as the kubelet)"
run apt-get update -q
run apt-get install -y -q ca-certificates curl gpg apt-transport-https containerd
run mkdir -p /etc/containerd
run_sh "containerd config default > /etc/containerd/config.toml"
run sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml
run sed -i "s#sandbox_image = \".*\"#sandbox_image = \"$PAUSE_IMAGE\"#" /etc/containerd/config.toml
run systemctl restart containerd
run systemctl enable containerd
write_file /etc/crictl.yaml <<'CONF'
runtime-endpoint: unix:///run/containerd/containerd.sock
image-endpoint: unix:///run/containerd/containerd.sock
timeout: 10
CONF

log "4/6 kubeadm, kubelet, kubectl $K8S_MINOR from pkgs.k8s.io, held at one version"
run mkdir -p -m 0755 /etc/apt/keyrings
run_sh "curl -fsSL https://pkgs.k8s.io/core:/stable:/v$K8S_MINOR/deb/Release.key | gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg"
write_file /etc/apt/sources.list.d/kubernetes.list <<LIST
deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v$K8S_MINOR/deb/ /
LIST
run apt-get update -q
version="$K8S_PKG_VERSION"
if [[ -z "$version" ]]; then
  if [[ "$DRY_RUN" == 1 ]]; then
    version="<newest $K8S_MINOR.x in the repository>"
  else
    version="$(apt-cache madison kubeadm | awk 'NR == 1 {print $3}')"
    [[ -n "$version" ]] || die "no kubeadm package in the v$K8S_MINOR repository"
  fi
fi
log "Kubernetes packages: $version (set K8S_PKG_VERSION=$version on every node to repeat it)"
run apt-get install -y -q --allow-change-held-packages \
  "kubelet=$version" "kubeadm=$version" "kubectl=$version"
run apt-mark hold kubelet kubeadm kubectl
run systemctl enable --now kubelet

log "5/6 host firewall"
DRY_RUN="$DRY_RUN" "$here/open-firewall.sh" --role "$role"

log "6/6 checks"
run_sh "crictl info >/dev/null && echo 'containerd answers on CRI'"
run kubeadm version -o short
log "node ready for kubeadm ($role)"
