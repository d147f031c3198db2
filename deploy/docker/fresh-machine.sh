#!/usr/bin/env bash
# Proves the README's two commands on a fresh Debian 12 machine: a container from the debootstrapped
# minbase image (deploy/docker/make-base-image.sh; nothing installed by hand), a git clone of the
# commit at /src and ../shared (models, images) mounted read-only at /shared.
#
#   deploy/docker/fresh-machine.sh run        exactly `scripts/run.sh` (the README's first command),
#       then /readyz and a coco128 image POSTed, the JSON checked, SIGTERM -> exit 0. Prints
#       "fresh machine: clone -> first detection in N s". Keeps the container as clouddetect-fresh:build
#       (packages installed, the commit built) for deploy/docker/test.sh's image build.
#   deploy/docker/fresh-machine.sh test-deps  `scripts/deps.sh test` in another such container: the
#       second command's whole package set installs on a clean base (fails if apt cannot resolve it),
#       then `scripts/deps.sh --check test` finds nothing missing.
#   deploy/docker/fresh-machine.sh ci         run and test-deps at the same time (one compiles, the
#       other downloads); what .ci/run does every time.
#   deploy/docker/fresh-machine.sh test       exactly `scripts/test.sh` (the README's second command,
#       the whole suite; about an hour on 2 cores), in a container with every capability (the suite
#       makes cgroups and network namespaces; a Docker daemon inside it may not start: that test skips). CLOUDDETECT_QUICK=1
#       is passed on (no sanitizer builds, no fuzzing).
#
# Env: CLOUDDETECT_SHARED (default ../shared beside the repo), CLOUDDETECT_FRESH_TIMEOUT (seconds for
# the first detection, default 3600), CLOUDDETECT_BASE_MAX_AGE_HOURS (debootstrap again when the base
# is older, default 24). Needs root, Docker (started if not running) and the Debian mirror.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh source-path=SCRIPTDIR
source "$here/common.sh"
repo="$docker_repo"
shared="$(cd "${CLOUDDETECT_SHARED:-$repo/../shared}" && pwd)"
timeout_s="${CLOUDDETECT_FRESH_TIMEOUT:-3600}"
test_image="$shared/data/coco128/images/000000000025.jpg"
expect_label="giraffe"
python=/usr/bin/python3
what="${1:-ci}"

work="$(mktemp -d /tmp/clouddetect-fresh.XXXXXX)"
# The containers this mode makes (removed at exit, also when a background step failed).
case "$what" in
  run) containers=(clouddetect-fresh-run) ;;
  test-deps) containers=(clouddetect-fresh-deps) ;;
  ci) containers=(clouddetect-fresh-run clouddetect-fresh-deps) ;;
  *) containers=(clouddetect-fresh-test) ;;
esac
log() { printf '[fresh-machine %4ds] %s\n' "$SECONDS" "$*"; }
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  rm -rf "$work"
  docker_stop_daemon
}
trap cleanup EXIT
die() { echo "FAIL fresh machine: $*"; exit 1; }

case "$what" in run | test-deps | ci | test) ;; *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;; esac
[[ $(id -u) -eq 0 ]] || die "needs root (Docker, debootstrap)"
[[ -f "$test_image" ]] || die "$test_image missing (CLOUDDETECT_SHARED=$shared)"
docker_install_packages || die "$docker_problem"
docker_start_daemon || die "$docker_problem"
docker_ensure_base || die "$docker_problem"

# The clone a user would make: the commit, nothing else (uncommitted changes are not in it).
commit="$(git -C "$repo" rev-parse HEAD)"
clone_start=$SECONDS
git clone -q "$repo" "$work/clouddetect"
git -C "$work/clouddetect" checkout -q --detach "$commit" || die "commit $commit is on no branch of $repo"
[[ -z "$(git -C "$repo" status --porcelain)" ]] || log "note: $repo has uncommitted changes; testing commit $commit"

# new_container NAME [docker run options...] -- COMMAND...: a container from the base with the clone
# at /src (copied in, so the container owns it) and ../shared read-only at /shared.
# A network that intercepts TLS with its own CA (the host names it in NODE_EXTRA_CA_CERTS) is part of
# the network, not of the machine: npm in the container trusts it too.
network_ca_args=()
if [[ -r "${NODE_EXTRA_CA_CERTS:-}" ]]; then
  network_ca_args=(-v "$NODE_EXTRA_CA_CERTS:/run/network-ca.crt:ro" -e NODE_EXTRA_CA_CERTS=/run/network-ca.crt)
fi
new_container() {
  local name=$1
  shift
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker create --name "$name" --network host "${docker_cgroup_args[@]}" "${network_ca_args[@]}" \
    -v "$shared:/shared:ro" -w /src "$@" >/dev/null
  docker cp -a "$work/clouddetect/." "$name:/src"
}

# The README's first command. The port comes from the environment (CLOUDDETECT_PORT, the contract's
# variable), so the command stays exactly `scripts/run.sh`.
fresh_run() {
  local name=clouddetect-fresh-run port status out t old
  port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  new_container "$name" -e CLOUDDETECT_HOST=127.0.0.1 -e CLOUDDETECT_PORT="$port" \
    "$docker_base_tag" scripts/run.sh
  log "run: docker start $name: scripts/run.sh on 127.0.0.1:$port (install, build, model, serve)"
  docker start "$name" >/dev/null
  if ! out="$("$python" "$here/http_check.py" ready --port "$port" --timeout "$timeout_s" \
    --alive-cmd "[ \"\$(docker inspect -f '{{.State.Running}}' $name)\" = true ]" 2>&1)"; then
    docker logs --tail 30 "$name" 2>&1 | sed 's/^/    /'
    die "scripts/run.sh: $out"
  fi
  log "run: /readyz $out"
  out="$("$python" "$here/http_check.py" detect --port "$port" --image "$test_image" \
    --label "$expect_label" --id fresh-machine-1 2>&1)" || die "POST /api/object_detection: $out"
  t=$((SECONDS - clone_start))
  log "run: POST /api/object_detection ($(basename "$test_image")): $out"
  docker logs "$name" 2>&1 | grep -m1 '^model.sh:' | sed 's/^/    /' || true
  docker stop --time 30 "$name" >/dev/null
  status="$(docker inspect -f '{{.State.ExitCode}}' "$name")"
  [[ "$status" == 0 ]] || die "after SIGTERM, scripts/run.sh exited $status"
  old="$(docker image inspect -f '{{.Id}}' "$docker_fresh_tag" 2>/dev/null || true)"
  docker commit --change "LABEL org.clouddetect.commit=$commit" "$name" "$docker_fresh_tag" >/dev/null
  if [[ -n "$old" ]]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
  echo "fresh machine: clone -> first detection in $t s (commit ${commit:0:12}, $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'))"
}

# The second command's package set, installed (not built) on a clean base.
fresh_test_deps() {
  local name=clouddetect-fresh-deps t0=$SECONDS
  new_container "$name" "$docker_base_tag" bash -c 'scripts/deps.sh test && scripts/deps.sh --check test'
  log "test-deps: scripts/deps.sh test on a clean base"
  if ! docker start -a "$name" >"$work/deps.log" 2>&1; then
    tail -n 20 "$work/deps.log" | sed 's/^/    /'
    die "scripts/deps.sh test failed on a clean Debian 12 base"
  fi
  echo "fresh machine: scripts/deps.sh test installed $(docker diff "$name" |
    grep -c '^A /var/lib/dpkg/info/.*\.list$') packages on a clean base in $((SECONDS - t0)) s"
}

# The README's second command, the whole suite, on a clean base.
fresh_test() {
  local name=clouddetect-fresh-test t0=$SECONDS
  # Not --privileged (refused where the host itself lacks a capability): every capability this host
  # has, no seccomp/AppArmor filter, the host's cgroup tree writable (the suite's 0.5 CPU pods).
  local caps=(--cap-add ALL)
  grep -q '^CapBnd:.*1fffeffffff' /proc/self/status && caps+=(--cap-drop SYS_RESOURCE)
  new_container "$name" "${caps[@]}" --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --cgroupns host -v /sys/fs/cgroup:/sys/fs/cgroup -e CLOUDDETECT_QUICK="${CLOUDDETECT_QUICK:-0}" \
    "$docker_base_tag" scripts/test.sh
  log "test: docker start $name: scripts/test.sh (log /tmp/clouddetect-fresh-test.log)"
  if docker start -a "$name" >/tmp/clouddetect-fresh-test.log 2>&1; then
    tail -n 5 /tmp/clouddetect-fresh-test.log
    echo "fresh machine: clone -> scripts/test.sh passed in $((SECONDS - clone_start)) s (CLOUDDETECT_QUICK=${CLOUDDETECT_QUICK:-0})"
  else
    tail -n 40 /tmp/clouddetect-fresh-test.log
    die "scripts/test.sh failed on a clean base after $((SECONDS - t0)) s (log /tmp/clouddetect-fresh-test.log)"
  fi
}

case "$what" in
  run) fresh_run ;;
  test-deps) fresh_test_deps ;;
  test) fresh_test ;;
  ci)
    fresh_test_deps >"$work/test-deps.out" 2>&1 &
    deps_pid=$!
    fresh_run
    if wait "$deps_pid"; then cat "$work/test-deps.out"; else cat "$work/test-deps.out"; exit 1; fi
    ;;
esac
