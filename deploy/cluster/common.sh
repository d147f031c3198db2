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

# SSH options for the admin-side scripts: no prompts, keep a connection per host.
ssh_opts() {
  local opts=(-o BatchMode=yes -o StrictHostKeyChecking=accept-new -o ConnectTimeout=15)
  [[ -n "${SSH_KEY:-}" ]] && opts+=(-i "$SSH_KEY")
  printf '%s\n' "${opts[@]}"
}
