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
started_dockerd_pid=""
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
  if [[ -n "$started_dockerd_pid" ]]; then
    log "stopping the dockerd this test started (pid $started_dockerd_pid)"
    kill "$started_dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$started_dockerd_pid" 2>/dev/null || break; sleep 0.5; done
  fi
}
trap cleanup EXIT

finish() {
  echo "$passes passed, $failures failed"
  if [[ $failures -eq 0 ]]; then exit 0; fi
  exit 1
}

# ---- 1. Docker daemon --------------------------------------------------------------------------
ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ "${CLOUDDETECT_NO_INSTALL:-0}" == 1 || $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    return 0
  fi
  log "installing ${missing[*]} (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; } ||
    log "apt-get install ${missing[*]} failed"
}

ensure_daemon() {
  if command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; then
    log "using the running Docker daemon"
    return 0
  fi
  command -v dockerd >/dev/null || skip "no dockerd (Debian package docker.io) and it cannot be installed here"
  command -v docker >/dev/null || skip "no docker client"
  [[ $(id -u) -eq 0 ]] || skip "dockerd needs root"
  local dlog
  dlog="$(mktemp /tmp/clouddetect-dockerd.XXXXXX.log)"
  log "starting dockerd (vfs storage, no bridge, no iptables; log $dlog)"
  dockerd --storage-driver=vfs --bridge=none --iptables=false >"$dlog" 2>&1 &
  started_dockerd_pid=$!
  for _ in $(seq 1 60); do
    if timeout 5 docker info >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$started_dockerd_pid" 2>/dev/null; then
      started_dockerd_pid=""
      tail -n 5 "$dlog"
      skip "dockerd exited at start (see above): Docker cannot run on this machine"
    fi
    sleep 0.5
  done
  tail -n 5 "$dlog"
  skip "dockerd did not answer within 30 s: Docker cannot run on this machine"
}

ensure_packages
ensure_daemon

# Containers and builds stay inside this job's memory cgroup (cgroup v1 layout here).
cgroup_args=()
memcg="$(sed -n 's/^[0-9]*:memory:\(.*\)$/\1/p' /proc/self/cgroup)"
if [[ -n "$memcg" && "$memcg" != "/" ]]; then
  cgroup_args=(--cgroup-parent "$memcg/docker")
fi

# ---- 2. base image -----------------------------------------------------------------------------
if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  pass "base image debian:bookworm-slim present (cached)"
else
  log "making debian:bookworm-slim with debootstrap (about a minute)"
  if timeout 900 "$here/make-base-image.sh"; then
    pass "base image debian:bookworm-slim made with debootstrap"
  else
    die "make-base-image.sh failed"
  fi
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

log "docker build -f deploy/Dockerfile --build-arg MODEL_DIR=models/$model -t $tag (timeout ${build_timeout}s)"
build_log="$(mktemp /tmp/clouddetect-docker-build.XXXXXX.log)"
build_start=$SECONDS
if timeout "$build_timeout" docker build --force-rm --network host "${cgroup_args[@]}" \
  -f "$ctx/deploy/Dockerfile" --build-arg "MODEL_DIR=models/$model" -t "$tag" "$ctx" >"$build_log" 2>&1; then
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
http_check="$(cat <<'PY'
import base64, json, sys, time, urllib.error, urllib.request
port, image, label, phase = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
base = f"http://127.0.0.1:{port}"

def get(path):
    try:
        with urllib.request.urlopen(base + path, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, b""

if phase == "ready":
    deadline = time.time() + 120
    while time.time() < deadline:
        status, body = get("/readyz")
        if status == 200:
            print(f"ready after {120 - (deadline - time.time()):.1f} s: {body.decode()}")
            sys.exit(0)
        time.sleep(0.5)
    print(f"/readyz not 200 within 120 s (last status {status})")
    sys.exit(1)

with open(image, "rb") as f:
    payload = json.dumps({"id": "docker-test-1", "image": base64.b64encode(f.read()).decode()}).encode()
req = urllib.request.Request(base + "/api/object_detection", data=payload, method="POST",
                             headers={"Content-Type": "application/json"})
t0 = time.time()
with urllib.request.urlopen(req, timeout=60) as r:
    status, served_by, answer = r.status, r.headers.get("X-Served-By"), json.load(r)
ms = (time.time() - t0) * 1000
problems = []
if status != 200: problems.append(f"status {status}")
if answer.get("id") != "docker-test-1": problems.append(f"id {answer.get('id')!r}")
objects = answer.get("objects")
if not isinstance(objects, list): problems.append("no objects list")
else:
    for o in objects:
        r = o.get("rectangle", {})
        if not (isinstance(o.get("label"), str) and 0 <= o.get("accuracy", -1) <= 1 and
                all(isinstance(r.get(k), int) for k in ("left", "top", "width", "height"))):
            problems.append(f"malformed object {o}")
    if not any(o.get("label") == label and o.get("accuracy", 0) >= 0.5 for o in objects):
        problems.append(f"no {label!r} found")
if not served_by: problems.append("no X-Served-By header")
summary = ", ".join(f"{o.get('label')} {o.get('accuracy'):.2f}" for o in objects or [])
print(f"{ms:.0f} ms, X-Served-By {served_by}: {summary}")
if problems:
    print("problems: " + "; ".join(problems))
    sys.exit(1)
PY
)"

if out="$("$python" -c "$http_check" "$port" "$test_image" "$expect_label" ready 2>&1)"; then
  pass "/readyz: $out"
else
  docker logs --tail 20 "$container" 2>&1 | sed 's/^/    /'
  die "/readyz: $out"
fi

if out="$("$python" -c "$http_check" "$port" "$test_image" "$expect_label" detect 2>&1)"; then
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
