#!/usr/bin/env bash
# CI test of the container image, as far as this machine allows:
#   1. a Docker daemon (starts Debian's dockerd with the flags that work here if none runs);
#   2. the base debian:bookworm-slim made with debootstrap if absent (no registry reachable);
#   3. docker build of deploy/Dockerfile with a real model baked in;
#   4. docker run --cpus 0.5 --memory 512m --network host --read-only, as the image's non-root user;
#   5. /readyz, one real coco128 image posted as {"id","image"}, the JSON answer checked;
#   6. docker stop (SIGTERM): exit code 0 within the grace time;
#   7. the image size, and the largest libraries in it.
# Skips (exit 0, "SKIP" line) only when no Docker daemon can run here at all.
#
# Environment: CLOUDDETECT_SHARED (default ../shared beside the repo), CLOUDDETECT_TEST_MODEL
# (yolo-fastest-1.1), CLOUDDETECT_TEST_IMAGE_TAG (clouddetect:test), CLOUDDETECT_BUILD_TIMEOUT
# (seconds, 2400: a cold build installs the -dev packages and compiles), CLOUDDETECT_IMAGE_MAX_MB
# (fail above it; unset = report only), CLOUDDETECT_NO_INSTALL=1 (never apt-get install).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh source-path=SCRIPTDIR
source "$here/common.sh"
repo="$(cd "$here/../.." && pwd)"
shared="${CLOUDDETECT_SHARED:-$repo/../shared}"
model="${CLOUDDETECT_TEST_MODEL:-yolo-fastest-1.1}"
tag="${CLOUDDETECT_TEST_IMAGE_TAG:-clouddetect:test}"
build_timeout="${CLOUDDETECT_BUILD_TIMEOUT:-2400}"
test_image="$shared/data/coco128/images/000000000025.jpg"
expect_label="giraffe"
python=/usr/bin/python3
export DOCKER_BUILDKIT=0 # the classic builder: multi-stage, --cgroup-parent, no buildx plugin needed

start_s=$SECONDS
container=""
ctx=""
failures=0
passes=0

log() { printf '[docker-test %3ds] %s\n' "$((SECONDS - start_s))" "$*"; }
pass() { passes=$((passes + 1)); echo "PASS $*"; }
fail() { failures=$((failures + 1)); echo "FAIL $*"; }
die() { fail "$*"; finish; }
skip() { echo "SKIP docker image test: $*"; echo "0 passed, 0 failed, 1 skipped"; exit 0; }

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [[ -n "$container" ]]; then docker rm -f "$container" >/dev/null 2>&1 || true; fi
  if [[ -n "$ctx" ]]; then rm -rf "$ctx"; fi
  docker_stop_daemon
}
trap cleanup EXIT

finish() {
  echo "$passes passed, $failures failed"
  if [[ $failures -eq 0 ]]; then exit 0; fi
  exit 1
}

# ---- 1. Docker daemon --------------------------------------------------------------------------
docker_install_packages || log "$docker_problem"
docker_start_daemon || skip "$docker_problem: Docker cannot run on this machine"
cgroup_args=("${docker_cgroup_args[@]}")

# ---- 2. base image -----------------------------------------------------------------------------
if docker_ensure_base; then
  pass "base image $docker_base_tag (Debian 12 minbase, debootstrapped)"
else
  die "$docker_problem"
fi

# ---- 3. build ----------------------------------------------------------------------------------
[[ -f "$test_image" ]] || die "test image $test_image missing (CLOUDDETECT_SHARED=$shared)"
[[ -d "$shared/models/$model" ]] || die "model $shared/models/$model missing"

# The build context: the repository's files (tracked, plus untracked ones git does not ignore)
# and the model under models/, as a user would lay it out.
list_repo_files() {
  if git -C "$repo" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$repo" ls-files -z --cached --others --exclude-standard
  else
    (cd "$repo" && find . -path ./.git -prune -o -type f -print0 | sed -z 's,^\./,,')
  fi
}
ctx="$(mktemp -d /tmp/clouddetect-docker-ctx.XXXXXX)"
list_repo_files | grep -zvE '^(build[^/]*|cmake-build-[^/]*|\.git|models)/' |
  while IFS= read -r -d '' f; do if [[ -f "$repo/$f" ]]; then printf '%s\0' "$f"; fi; done |
  tar -C "$repo" --null -T - -cf - | tar -C "$ctx" -xf -
mkdir -p "$ctx/models"
cp -r "$shared/models/$model" "$ctx/models/$model"

# The build stage starts from the fresh-machine test's container (fresh-machine.sh run) when that
# one built this very commit and the tree has no other change: scripts/run.sh has already installed
# the packages and compiled the same sources there, so they are not installed and compiled twice.
build_args=(--build-arg "MODEL_DIR=models/$model")
commit="$(git -C "$repo" rev-parse HEAD 2>/dev/null || true)"
if [[ -n "$commit" && -z "$(git -C "$repo" status --porcelain 2>/dev/null)" ]] &&
  [[ "$(docker_fresh_commit)" == "$commit" ]]; then
  build_args+=(--build-arg "BUILD_BASE=$docker_fresh_tag")
  log "build stage from $docker_fresh_tag (the fresh-machine container of $commit)"
fi
log "docker build -f deploy/Dockerfile ${build_args[*]} -t $tag (timeout ${build_timeout}s)"
build_log="$(mktemp /tmp/clouddetect-docker-build.XXXXXX.log)"
build_start=$SECONDS
if timeout "$build_timeout" docker build --force-rm --network host "${cgroup_args[@]}" \
  -f "$ctx/deploy/Dockerfile" "${build_args[@]}" -t "$tag" "$ctx" >"$build_log" 2>&1; then
  pass "docker build in $((SECONDS - build_start)) s (log $build_log)"
  sed -n '/^collect-runtime-libs:/,/^Removing intermediate/p' "$build_log" | grep -v '^Removing' |
    sed 's/^/    /' || true
  # Every source change leaves the previous images behind untagged (~1.6 GB for the build stage,
  # as vfs copies each layer; repeated runs filled a 250 GB disk). Keep the newest build stage, the
  # cache of the next build, and remove the superseded ones and the superseded runtime images.
  mapfile -t stale < <(
    docker images -q --filter dangling=true --filter label=org.clouddetect.stage=build | tail -n +2
    docker images -q --filter dangling=true --filter label=org.opencontainers.image.title=clouddetect
  )
  if ((${#stale[@]})); then
    docker rmi "${stale[@]}" >/dev/null 2>&1 || true
    log "removed ${#stale[@]} superseded images of earlier builds"
  fi
else
  tail -n 40 "$build_log"
  die "docker build failed (log $build_log)"
fi

# ---- 4. run ------------------------------------------------------------------------------------
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
container="clouddetect-test-$$"
log "docker run --cpus 0.5 --memory 512m --network host --read-only on 127.0.0.1:$port"
if docker run -d --name "$container" "${cgroup_args[@]}" \
  --cpus 0.5 --memory 512m --network host --read-only \
  -e CLOUDDETECT_HOST=127.0.0.1 -e CLOUDDETECT_PORT="$port" \
  -e POD_NAME=docker-test -e NODE_NAME="$(hostname)" \
  "$tag" >/dev/null; then
  pass "container started"
else
  die "docker run failed"
fi

user="$(docker inspect -f '{{.Config.User}}' "$container")"
readonly_fs="$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$container")"
if [[ "$user" == 10001:10001 && "$readonly_fs" == true ]]; then
  pass "runs as $user with a read-only root filesystem"
else
  fail "user '$user' (want 10001:10001), read-only rootfs '$readonly_fs'"
fi

# ---- 5. readiness and a real request -----------------------------------------------------------
if out="$("$python" "$here/http_check.py" ready --port "$port" --timeout 120 2>&1)"; then
  pass "/readyz: $out"
else
  docker logs --tail 20 "$container" 2>&1 | sed 's/^/    /'
  die "/readyz: $out"
fi

if out="$("$python" "$here/http_check.py" detect --port "$port" --image "$test_image" --label "$expect_label" 2>&1)"; then
  pass "POST /api/object_detection (coco128 $(basename "$test_image")): $out"
else
  echo "$out" | tail -n 5 | sed 's/^/    /'
  fail "POST /api/object_detection"
fi

if docker logs "$container" 2>/dev/null | grep '"msg":"request"' | grep -q '"status":200'; then
  pass "JSON request log line: $(docker logs "$container" 2>/dev/null | grep '"msg":"request"' | tail -n 1)"
else
  docker logs --tail 10 "$container" 2>&1 | sed 's/^/    /'
  fail "no JSON request log line with status 200 on stdout"
fi

# ---- 6. SIGTERM --------------------------------------------------------------------------------
stop_start=$SECONDS
docker stop --time 30 "$container" >/dev/null
exit_code="$(docker inspect -f '{{.State.ExitCode}}' "$container")"
oom="$(docker inspect -f '{{.State.OOMKilled}}' "$container")"
if [[ "$exit_code" == 0 && "$oom" == false ]]; then
  pass "SIGTERM: clean exit 0 in $((SECONDS - stop_start)) s"
else
  docker logs --tail 10 "$container" 2>&1 | sed 's/^/    /'
  fail "SIGTERM: exit code $exit_code, OOM-killed $oom (137 = killed after the 30 s grace)"
fi

# ---- 7. size -----------------------------------------------------------------------------------
bytes="$(docker image inspect -f '{{.Size}}' "$tag")"
mb=$((bytes / 1000000))
base_mb=$(($(docker image inspect -f '{{.Size}}' debian:bookworm-slim) / 1000000))
echo "image $tag: $mb MB (base debian:bookworm-slim $base_mb MB); layers that add files:"
docker history --format '{{.Size}}\t{{.CreatedBy}}' "$tag" | awk -F '\t' '$1 != "0B" {print "    " $0}' |
  cut -c 1-110
if [[ -n "${CLOUDDETECT_IMAGE_MAX_MB:-}" ]]; then
  if [[ $mb -le $CLOUDDETECT_IMAGE_MAX_MB ]]; then
    pass "image size $mb MB <= $CLOUDDETECT_IMAGE_MAX_MB MB"
  else
    fail "image size $mb MB > $CLOUDDETECT_IMAGE_MAX_MB MB"
  fi
fi

log "done"
finish
