# shellcheck shell=bash disable=SC2034 # the variables are for the scripts that source this
# Shared by deploy/docker/test.sh and deploy/docker/fresh-machine.sh (sourced, not run):
# the Docker daemon, the memory cgroup for containers, and the debootstrapped Debian 12 base.
# Each function returns non-zero with the reason in $docker_problem; the caller decides.

docker_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
docker_repo="$(cd "$docker_here/../.." && pwd)"
docker_base_tag="debian:bookworm-slim"
# fresh-machine.sh run keeps its container (packages installed, the commit built in /src/build) as
# this image, labelled with the commit; test.sh builds the image's build stage on it.
docker_fresh_tag="clouddetect-fresh:build"
docker_problem=""
docker_started_pid=""

# docker.io and debootstrap from scripts/deps.sh (the one package list), unless told not to.
docker_install_packages() {
  command -v dockerd >/dev/null && command -v debootstrap >/dev/null && return 0
  [[ "${CLOUDDETECT_NO_INSTALL:-0}" == 1 || $(id -u) -ne 0 ]] && return 0
  "$docker_repo/scripts/deps.sh" docker || docker_problem="scripts/deps.sh docker failed"
}

# A daemon that answers: the running one, or Debian's dockerd started with the flags that work
# here (vfs storage, no bridge, no iptables). Sets $docker_started_pid when it started one.
docker_start_daemon() {
  if command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; then return 0; fi
  command -v dockerd >/dev/null || { docker_problem="no dockerd: scripts/deps.sh docker installs it"; return 1; }
  [[ $(id -u) -eq 0 ]] || { docker_problem="dockerd needs root"; return 1; }
  local dlog
  dlog="$(mktemp /tmp/clouddetect-dockerd.XXXXXX.log)"
  echo "starting dockerd (vfs storage, no bridge, no iptables; log $dlog)"
  dockerd --storage-driver=vfs --bridge=none --iptables=false >"$dlog" 2>&1 &
  docker_started_pid=$!
  for _ in $(seq 1 60); do
    if timeout 5 docker info >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$docker_started_pid" 2>/dev/null; then
      docker_started_pid=""
      docker_problem="dockerd exited at start: $(tail -n 3 "$dlog" | tr '\n' ' ')"
      return 1
    fi
    sleep 0.5
  done
  docker_problem="dockerd did not answer within 30 s: $(tail -n 3 "$dlog" | tr '\n' ' ')"
  return 1
}

docker_stop_daemon() {
  [[ -n "$docker_started_pid" ]] || return 0
  echo "stopping the dockerd started here (pid $docker_started_pid)"
  kill "$docker_started_pid" 2>/dev/null || true
  for _ in $(seq 1 20); do kill -0 "$docker_started_pid" 2>/dev/null || break; sleep 0.5; done
  docker_started_pid=""
}

# Containers and builds stay inside this job's memory cgroup (cgroup v1 layout here).
docker_cgroup_args=()
docker_memcg="$(sed -n 's/^[0-9]*:memory:\(.*\)$/\1/p' /proc/self/cgroup)"
if [[ -n "$docker_memcg" && "$docker_memcg" != "/" ]]; then
  docker_cgroup_args=(--cgroup-parent "$docker_memcg/docker")
fi

# The Debian 12 minbase image, made with debootstrap (make-base-image.sh) and nothing installed by
# hand; made again when older than CLOUDDETECT_BASE_MAX_AGE_HOURS (default 24), so CI starts from
# the current Debian 12 at least daily.
docker_ensure_base() {
  local max_age=${CLOUDDETECT_BASE_MAX_AGE_HOURS:-24} created age_h version want
  want="$(sed -n 's/^base_version=//p' "$docker_here/make-base-image.sh")"
  version="$(docker image inspect -f '{{index .Config.Labels "org.clouddetect.base-version"}}' "$docker_base_tag" 2>/dev/null || true)"
  if [[ "$version" != "$want" ]]; then
    echo "base image $docker_base_tag: version '${version:-none}', want $want: debootstrapping it"
  elif created="$(docker image inspect -f '{{.Created}}' "$docker_base_tag" 2>/dev/null)"; then
    age_h=$((($(date +%s) - $(date -d "$created" +%s)) / 3600))
    if ((age_h < max_age)); then
      echo "base image $docker_base_tag: debootstrapped ${age_h} h ago"
      return 0
    fi
    echo "base image $docker_base_tag is ${age_h} h old: debootstrapping it again"
  fi
  timeout 1200 "$docker_here/make-base-image.sh" --force --tag "$docker_base_tag" ||
    { docker_problem="make-base-image.sh failed"; return 1; }
}

# The commit the kept fresh-machine container built (empty if there is none).
docker_fresh_commit() {
  docker image inspect -f '{{index .Config.Labels "org.clouddetect.commit"}}' "$docker_fresh_tag" 2>/dev/null || true
}
