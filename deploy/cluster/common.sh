#!/usr/bin/env bash
# Shared helpers for deploy/cluster/*.sh (sourced, not run). Every command that changes a
# machine goes through `run`, so --dry-run prints it ("+ cmd") instead of running it.
# shellcheck disable=SC2034 # variables here are used by the scripts that source this file

# Pinned versions (override by environment). Kubernetes packages come from pkgs.k8s.io, whose
# apt repository holds one minor release; K8S_PKG_VERSION pins the patch (empty = newest 1.30.x,
# printed and held).
K8S_MINOR="${K8S_MINOR:-1.30}"
K8S_PKG_VERSION="${K8S_PKG_VERSION:-}"
FLANNEL_VERSION="${FLANNEL_VERSION:-v0.25.6}"
POD_CIDR="${POD_CIDR:-10.244.0.0/16}" # Flannel's default (kube-flannel.yml net-conf.json)
NODE_PORT="${NODE_PORT:-30500}"
PAUSE_IMAGE="${PAUSE_IMAGE:-registry.k8s.io/pause:3.9}" # the one kubeadm 1.30 expects

# Docker Engine from Docker's apt repository (docs.docker.com/engine/install/ubuntu): the newest
# DOCKER_MAJOR.x docker-ce and the newest CONTAINERD_MINOR.x containerd.io, printed and held;
# DOCKER_PKG_VERSION / CONTAINERD_PKG_VERSION pin exact ones. containerd.io stays on 1.7: the
# config node-prepare.sh writes is containerd 1.x's version 2 (docker-ce needs >= 1.7.27).
DOCKER_MAJOR="${DOCKER_MAJOR:-28}"
DOCKER_PKG_VERSION="${DOCKER_PKG_VERSION:-}"
CONTAINERD_MINOR="${CONTAINERD_MINOR:-1.7}"
CONTAINERD_PKG_VERSION="${CONTAINERD_PKG_VERSION:-}"
# The one containerd on a node: dockerd uses it (--containerd=) and the kubelet talks CRI to it.
CONTAINERD_SOCKET=/run/containerd/containerd.sock
CRI_ENDPOINT="unix://$CONTAINERD_SOCKET"

# Ubuntu package names, installed on the VMs (never on this repository's build machine).
NODE_BASE_PACKAGES=(ca-certificates curl gpg apt-transport-https)
# Removed before docker-ce (Docker's install guide): Ubuntu's own Docker and containerd would be
# a second engine and a second containerd; containerd.io conflicts with containerd and runc.
DOCKER_CONFLICTING_PACKAGES=(docker.io docker-doc docker-compose docker-compose-v2 podman-docker containerd runc)
DOCKER_ENGINE_PACKAGES=(docker-ce docker-ce-cli)   # pinned to one version, with containerd.io
DOCKER_CONTAINERD_PACKAGE=containerd.io
DOCKER_PLUGIN_PACKAGES=(docker-buildx-plugin)      # BuildKit for `docker build`
KUBERNETES_PACKAGES=(kubelet kubeadm kubectl)
FIREWALL_SAVE_PACKAGE=iptables-persistent          # provides netfilter-persistent

DRY_RUN="${DRY_RUN:-0}"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# run CMD...: runs, or prints under --dry-run.
run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '+ %s\n' "$(quote_args "$@")"
  else
    "$@"
  fi
}

# run_sh 'pipeline': a shell pipeline (one string), run by bash -c or printed.
run_sh() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '+ %s\n' "$1"
  else
    bash -c "$1"
  fi
}

# write_file PATH < content: writes stdin to PATH, or prints it indented.
write_file() {
  local path="$1"
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '+ write %s:\n' "$path"
    sed 's/^/|   /'
  else
    mkdir -p "$(dirname "$path")"
    cat >"$path"
  fi
}

quote_args() {
  local out="" a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
      out+="$a "
    elif [[ "$a" != *"'"* ]]; then
      out+="'$a' "
    else
      out+="$(printf '%q' "$a") "
    fi
  done
  printf '%s' "${out% }"
}

require_root() {
  [[ "$DRY_RUN" == 1 || $(id -u) -eq 0 ]] || die "run as root (sudo $0 ...)"
}

require_ubuntu() {
  [[ "$DRY_RUN" == 1 ]] && return 0
  # shellcheck disable=SC1091
  . /etc/os-release
  [[ "${ID:-}" == ubuntu ]] || log "warning: written for Ubuntu 22.04, this is ${PRETTY_NAME:-unknown}"
}

# package_version PKG PIN REGEX: PIN if set; otherwise the newest version of PKG in apt's lists
# whose version matches the extended REGEX (a placeholder under --dry-run).
package_version() {
  local pkg="$1" pin="$2" regex="$3" version
  if [[ -n "$pin" ]]; then
    printf '%s\n' "$pin"
  elif [[ "$DRY_RUN" == 1 ]]; then
    printf '<newest %s matching %s>\n' "$pkg" "$regex"
  else
    # madison lists the newest first: " docker-ce | 5:28.5.2-1~ubuntu.22.04~jammy | https://..."
    version="$(apt-cache madison "$pkg" | re="$regex" awk '$3 ~ ENVIRON["re"] {print $3; exit}')"
    [[ -n "$version" ]] || die "no $pkg version matching $regex in the apt repositories (apt-cache madison $pkg)"
    printf '%s\n' "$version"
  fi
}

# as_root CMD...: CMD through `run`, with sudo unless this is root already.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then run "$@"; else run sudo "$@"; fi
}
sudo_prefix() { [[ $(id -u) -eq 0 ]] || printf 'sudo '; }

# SSH options for the admin-side scripts: no prompts, keep a connection per host.
ssh_opts() {
  local opts=(-o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ConnectTimeout=15)
  [[ -n "${SSH_KEY:-}" ]] && opts+=(-i "$SSH_KEY")
  printf '%s\n' "${opts[@]}"
}

# manifest_image REPO: the image the manifests run, clouddetect:<newTag of the kustomize base>.
manifest_image() {
  local tag
  tag="$(sed -n 's/^ *newTag: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$1/deploy/k8s/base/kustomization.yaml")"
  [[ -n "$tag" ]] || die "no newTag in $1/deploy/k8s/base/kustomization.yaml: give --image NAME:TAG"
  printf 'clouddetect:%s\n' "$tag"
}
