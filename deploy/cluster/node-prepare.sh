#!/usr/bin/env bash
# Takes a fresh Ubuntu 22.04 VM to a kubeadm-ready node: swap off, kernel modules and sysctls,
# host firewall, Docker Engine (pinned, held), the CRI plugin enabled in Docker's own containerd
# (systemd cgroups), kubeadm/kubelet/kubectl of the pinned version (held), then the versions.
# Run on each node, as root; bootstrap.sh does it over SSH.
#
# usage: node-prepare.sh --role control-plane|worker [--k8s-version 1.30.x-y.z] [--dry-run]
#
# One container runtime per node: Docker Engine runs on containerd (the containerd.io package,
# its own service, socket /run/containerd/containerd.sock). That package ships its config with
# disabled_plugins = ["cri"], so only dockerd can use it. This script rewrites the config to
# enable CRI with the systemd cgroup driver, and the kubelet talks CRI to that same containerd:
# no cri-dockerd, no second containerd. `docker build` works on every node, and the images the
# kubelet runs live in that containerd's namespace k8s.io (load-image.sh imports them there).
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
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done
[[ "$role" == control-plane || "$role" == worker ]] || die "--role control-plane|worker is required"
require_root
require_ubuntu
export DEBIAN_FRONTEND=noninteractive

log "1/7 swap off (the kubelet refuses to start with swap on)"
run swapoff -a
run sed -ri '/\sswap\s/s/^#?/#/' /etc/fstab

log "2/7 kernel modules and sysctls for bridged pod traffic"
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

# Before Docker: the saved rules are ours only (dockerd adds its own chains at each start).
log "3/7 host firewall"
DRY_RUN="$DRY_RUN" "$here/open-firewall.sh" --role "$role"

log "4/7 Docker Engine $DOCKER_MAJOR.x with containerd.io $CONTAINERD_MINOR.x from download.docker.com, held"
run apt-get update -q
run apt-get install -y -q "${NODE_BASE_PACKAGES[@]}"
if [[ "$DRY_RUN" == 1 ]]; then
  conflicting=("<those installed of: ${DOCKER_CONFLICTING_PACKAGES[*]}>")
else
  mapfile -t conflicting < <(dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' \
    "${DOCKER_CONFLICTING_PACKAGES[@]}" 2>/dev/null | awk '$1 == "ii" {print $2}')
fi
if [[ ${#conflicting[@]} -gt 0 ]]; then
  run apt-get remove -y -q "${conflicting[@]}"
fi
run install -m 0755 -d /etc/apt/keyrings
run curl -fsSL https://download.docker.com/linux/ubuntu/gpg -o /etc/apt/keyrings/docker.asc
run chmod a+r /etc/apt/keyrings/docker.asc
if [[ "$DRY_RUN" == 1 ]]; then
  arch="<dpkg --print-architecture>" codename="<VERSION_CODENAME of /etc/os-release>"
else
  arch="$(dpkg --print-architecture)"
  # shellcheck disable=SC1091
  codename="$(. /etc/os-release && echo "${UBUNTU_CODENAME:-$VERSION_CODENAME}")"
fi
write_file /etc/apt/sources.list.d/docker.list <<LIST
deb [arch=$arch signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu $codename stable
LIST
run apt-get update -q
docker_version="$(package_version docker-ce "$DOCKER_PKG_VERSION" "^5:${DOCKER_MAJOR//./\\.}\\.")"
containerd_version="$(package_version "$DOCKER_CONTAINERD_PACKAGE" "$CONTAINERD_PKG_VERSION" \
  "^${CONTAINERD_MINOR//./\\.}\\.")"
log "Docker Engine $docker_version, $DOCKER_CONTAINERD_PACKAGE $containerd_version" \
  "(set DOCKER_PKG_VERSION=$docker_version CONTAINERD_PKG_VERSION=$containerd_version to repeat them)"
engine=()
for p in "${DOCKER_ENGINE_PACKAGES[@]}"; do engine+=("$p=$docker_version"); done
run apt-get install -y -q --allow-change-held-packages "${engine[@]}" \
  "$DOCKER_CONTAINERD_PACKAGE=$containerd_version" "${DOCKER_PLUGIN_PACKAGES[@]}"
run apt-mark hold "${DOCKER_ENGINE_PACKAGES[@]}" "$DOCKER_CONTAINERD_PACKAGE"
if [[ -n "${SUDO_USER:-}" && "${SUDO_USER}" != root ]]; then
  run usermod -aG docker "$SUDO_USER" # `docker` without sudo from the next login
fi

log "5/7 CRI plugin on in Docker's containerd, systemd cgroup driver (as the kubelet), pause image"
write_file /etc/containerd/config.toml <<TOML
# Written by CloudDetect deploy/cluster/node-prepare.sh. Docker's $DOCKER_CONTAINERD_PACKAGE ships this
# file with disabled_plugins = ["cri"] (containerd for dockerd only); here the CRI plugin is on, so
# the kubelet and dockerd share this one containerd. Format: containerd 1.x config version 2.
version = 2
disabled_plugins = []

[grpc]
  address = "$CONTAINERD_SOCKET"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true
TOML
write_file /etc/crictl.yaml <<CONF
runtime-endpoint: $CRI_ENDPOINT
image-endpoint: $CRI_ENDPOINT
timeout: 10
CONF
run systemctl restart containerd
run systemctl restart docker # reconnects to the restarted containerd
run systemctl enable containerd docker

log "6/7 kubeadm, kubelet, kubectl $K8S_MINOR from pkgs.k8s.io, held at one version"
run_sh "curl -fsSL https://pkgs.k8s.io/core:/stable:/v$K8S_MINOR/deb/Release.key | gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes-apt-keyring.gpg"
write_file /etc/apt/sources.list.d/kubernetes.list <<LIST
deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v$K8S_MINOR/deb/ /
LIST
run apt-get update -q
version="$(package_version kubeadm "$K8S_PKG_VERSION" "^${K8S_MINOR//./\\.}\\.")"
log "Kubernetes packages: $version (set K8S_PKG_VERSION=$version on every node to repeat it)"
kube=()
for p in "${KUBERNETES_PACKAGES[@]}"; do kube+=("$p=$version"); done
run apt-get install -y -q --allow-change-held-packages "${kube[@]}"
run apt-mark hold "${KUBERNETES_PACKAGES[@]}"
run systemctl enable --now kubelet

log "7/7 checks: containerd answers on CRI with systemd cgroups, one containerd, no cri-dockerd"
run_sh "crictl info | grep -Eq '\"SystemdCgroup\": ?true' || { echo 'containerd: CRI off or SystemdCgroup not true' >&2; exit 1; }"
run_sh "[ \"\$(pgrep -cx containerd)\" -eq 1 ] || { echo 'not exactly one containerd process' >&2; exit 1; }"
run_sh "! command -v cri-dockerd >/dev/null || { echo 'cri-dockerd is installed: remove it' >&2; exit 1; }"
run_sh "docker info --format '{{.CgroupDriver}} cgroups, root {{.DockerRootDir}}'"
log "versions (for your report)"
run docker version
run containerd --version
run kubeadm version
run kubelet --version
run crictl --version
log "node ready for kubeadm ($role)"
