#!/usr/bin/env bash
# CI test of deploy/cluster (and every other deploy/ shell script), as far as a machine without
# a cluster allows: bash -n and shellcheck on each script; each cluster script's --dry-run,
# checked for the commands it must print and checked to run none of them (every command that
# would change a machine is a recording stub on PATH); scale.sh's wait loop against a fake
# kubectl (scale up, scale down past terminating pods, timeout). About 15 s.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deploy="$(cd "$here/.." && pwd)"

passes=0
failures=0
pass() { passes=$((passes + 1)); echo "PASS $*"; }
fail() { failures=$((failures + 1)); echo "FAIL $*"; }

tmp="$(mktemp -d /tmp/clouddetect-cluster-test.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT

# ---- static checks -----------------------------------------------------------------------------
mapfile -t scripts < <(find "$deploy" -name '*.sh' -type f | sort)
for s in "${scripts[@]}"; do
  if bash -n "$s" 2>"$tmp/err"; then :; else fail "bash -n ${s#"$deploy"/}: $(cat "$tmp/err")"; continue; fi
done
pass "bash -n on ${#scripts[@]} scripts"

if ! command -v shellcheck >/dev/null && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck >/dev/null 2>&1 || true
fi
if command -v shellcheck >/dev/null; then
  if shellcheck -x "${scripts[@]}" >"$tmp/shellcheck.txt" 2>&1; then
    pass "shellcheck $(shellcheck --version | awk '/^version/ {print $2}') clean on ${#scripts[@]} scripts"
  else
    cat "$tmp/shellcheck.txt"
    fail "shellcheck"
  fi
else
  fail "shellcheck not installed (apt-get install shellcheck)"
fi

# ---- dry runs: print everything, run nothing -----------------------------------------------------
mkdir -p "$tmp/stubs"
for cmd in apt-get apt-mark systemctl swapoff modprobe sysctl iptables ufw netfilter-persistent \
  containerd crictl ctr curl gpg kubeadm kubectl ssh scp docker install; do
  printf '#!/bin/sh\necho "%s $*" >> "%s/ran.txt"\n' "$cmd" "$tmp" >"$tmp/stubs/$cmd"
  chmod +x "$tmp/stubs/$cmd"
done
: >"$tmp/ran.txt"

# dry NAME EXPECTED... -- ARGS: runs NAME --dry-run ARGS, each EXPECTED must appear in the output.
dry() {
  local name="$1"; shift
  local expected=()
  while [[ "$1" != -- ]]; do expected+=("$1"); shift; done
  shift
  local out
  out="$tmp/$(basename "$name").$RANDOM.out"
  if ! PATH="$tmp/stubs:$PATH" bash "$here/$name" --dry-run "$@" >"$out" 2>&1; then
    tail -n 5 "$out" || true
    fail "$name --dry-run $*: exit non-zero"
    return
  fi
  local e missing=()
  for e in "${expected[@]}"; do grep -qF -- "$e" "$out" || missing+=("$e"); done
  if [[ ${#missing[@]} -eq 0 ]]; then
    pass "$name --dry-run $*: $(grep -c '^+ ' "$out") commands printed"
  else
    fail "$name --dry-run $*: missing: ${missing[*]}"
  fi
}

dry node-prepare.sh "swapoff -a" "modprobe br_netfilter" "net.ipv4.ip_forward" "SystemdCgroup = true" \
  "pkgs.k8s.io/core:/stable:/v1.30/deb" "kubeadm=" "apt-mark hold kubelet kubeadm kubectl" \
  "--dport 10250" "--dport 30500" "--dport 8472" "FORWARD -s 10.244.0.0/16" -- --role worker
dry node-prepare.sh "--dport 6443" "--dport 2379:2380" -- --role control-plane
dry open-firewall.sh "--dport 30500" "netfilter-persistent save" -- --role worker
dry control-plane-init.sh "kubeadm init" "--pod-network-cidr 10.244.0.0/16" \
  "--apiserver-cert-extra-sans 203.0.113.10" "flannel/releases/download/v0.25.6/kube-flannel.yml" \
  "kubeadm token create --print-join-command" -- --public-ip 203.0.113.10
dry bootstrap.sh "ubuntu@10.0.0.10 sudo env" "node-prepare.sh --role control-plane" \
  "ubuntu@10.0.0.11 sudo kubeadm join" "ubuntu@10.0.0.12 sudo kubeadm join" "control-plane-init.sh" \
  "wait --for=condition=Ready nodes --all" "node-role.kubernetes.io/worker=" -- \
  --controller ubuntu@10.0.0.10 --worker ubuntu@10.0.0.11 --worker ubuntu@10.0.0.12
dry load-image.sh "docker save clouddetect:0.1.0 | ssh" "ubuntu@10.0.0.11 sudo ctr -n k8s.io images import -" \
  "ubuntu@10.0.0.12 sudo ctr -n k8s.io images import -" "crictl inspecti clouddetect:0.1.0" -- \
  --image clouddetect:0.1.0 --node ubuntu@10.0.0.11 --node ubuntu@10.0.0.12
dry load-image.sh "docker push registry.example.com/team/clouddetect:0.1.0" -- \
  --image clouddetect:0.1.0 --registry registry.example.com/team
dry scale.sh "kubectl --namespace clouddetect scale deployment/clouddetect --replicas 4" -- --replicas 4
dry scale.sh "kubectl --kubeconfig k.conf --namespace exp scale deployment/cd --replicas 8" -- \
  --replicas 8 --namespace exp --deployment cd --kubeconfig k.conf
dry request-spread.sh "logs -l app=clouddetect --prefix --tail=-1 --since=10m" --
dry ../docker/make-base-image.sh "debootstrap --variant=minbase bookworm" "docker import" -- --force

if [[ -s "$tmp/ran.txt" ]]; then
  fail "--dry-run ran commands: $(head -n 3 "$tmp/ran.txt" | tr '\n' ';')"
else
  pass "--dry-run ran no command (recording stubs for apt-get, kubeadm, kubectl, ssh, docker, iptables, ...)"
fi

if PATH="$tmp/stubs:$PATH" bash "$here/load-image.sh" --dry-run --image clouddetect:latest --node n >/dev/null 2>&1; then
  fail "load-image.sh accepted :latest"
else
  pass "load-image.sh refuses :latest (the kubelet would pull it)"
fi
set +e
bash "$here/scale.sh" >/dev/null 2>&1; rc1=$?
bash "$here/scale.sh" --replicas four >/dev/null 2>&1; rc2=$?
set -e
if [[ $rc1 -eq 2 && $rc2 -eq 2 ]]; then pass "scale.sh usage errors exit 2"; else fail "scale.sh usage errors exit $rc1/$rc2, want 2"; fi

# ---- scale.sh against a fake kubectl -----------------------------------------------------------
# The fake serves `get pods` from a scenario: poll 1 shows the old pods (some terminating) and
# new ones not ready; from poll 2 the target state; scenario "stuck" never gets ready.
mkdir -p "$tmp/fake"
cat >"$tmp/fake/kubectl" <<'FAKE'
#!/usr/bin/env bash
state="$FAKE_STATE"
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in --namespace|--kubeconfig) shift 2 ;; *) args+=("$1"); shift ;; esac
done
set -- "${args[@]}"
want="$(cat "$state/want" 2>/dev/null || echo 0)"
polls="$(cat "$state/polls" 2>/dev/null || echo 0)"
case "$1 $2" in
  "get deployment/clouddetect") printf 'app=clouddetect,' ;;
  "scale deployment/clouddetect") echo "${4:-$3}" | sed 's/--replicas//' | tr -d ' ' >"$state/want"; echo 0 >"$state/polls" ;;
  "get pods")
    if [[ " $* " == *" wide "* ]]; then echo "NAME READY STATUS"; exit 0; fi
    polls=$((polls + 1)); echo "$polls" >"$state/polls"
    for i in $(seq 1 "$want"); do
      node="worker-$(( (i - 1) % 2 + 1 ))"
      ready=False
      [[ $polls -ge 2 && "$FAKE_SCENARIO" != stuck ]] && ready=True
      echo "clouddetect-$i live $node $ready"
    done
    [[ $polls -lt 3 ]] && for i in $(seq 1 "${FAKE_TERMINATING:-0}"); do echo "clouddetect-old-$i terminating worker-1 True"; done
    ;;
  "get endpointslices")
    [[ $polls -ge 2 && "$FAKE_SCENARIO" != stuck ]] && for _ in $(seq 1 "$want"); do printf x; done
    ;;
  "get events") echo "LAST SEEN TYPE REASON"; ;;
  "logs -l") cat "$FAKE_LOGS" ;;
  *) echo "fake kubectl: unexpected: $*" >&2; exit 1 ;;
esac
FAKE
chmod +x "$tmp/fake/kubectl"

# fake_scale SCENARIO TERMINATING ARGS...: runs scale.sh; sets rc, out, secs.
fake_scale() {
  local scenario="$1" terminating="$2"; shift 2
  mkdir -p "$tmp/state"; rm -f "$tmp/state"/*
  local t0=$SECONDS
  set +e
  out="$(FAKE_STATE="$tmp/state" FAKE_SCENARIO="$scenario" FAKE_TERMINATING="$terminating" \
    PATH="$tmp/fake:$PATH" bash "$here/scale.sh" "$@" 2>"$tmp/scale.err")"
  rc=$?
  set -e
  secs=$((SECONDS - t0))
}

fake_scale normal 0 --replicas 4 --timeout 30
if [[ $rc -eq 0 && "$out" == "READY 4/4 pods in "*"per node: worker-1=2 worker-2=2" ]]; then
  pass "scale.sh --replicas 4 (fake cluster): $out"
else
  fail "scale.sh --replicas 4: rc $rc, out '$out'"; cat "$tmp/scale.err"
fi
fake_scale normal 2 --replicas 2 --timeout 30
polls="$(cat "$tmp/state/polls")"
if [[ $rc -eq 0 && $polls -ge 3 && "$out" == "READY 2/2 pods"* ]]; then
  pass "scale.sh --replicas 2 waits out terminating pods ($polls polls): $out"
else
  fail "scale.sh --replicas 2 with terminating pods: rc $rc, polls $polls, out '$out'"; cat "$tmp/scale.err"
fi
fake_scale stuck 0 --replicas 8 --timeout 3
if [[ $rc -eq 1 && $secs -le 10 ]] && grep -q timeout "$tmp/scale.err"; then
  pass "scale.sh --timeout 3 on pods that never get ready: exit 1 after ${secs} s"
else
  fail "scale.sh timeout: rc $rc after ${secs}s"; cat "$tmp/scale.err"
fi

cat >"$tmp/logs.txt" <<'LOGS'
[pod/clouddetect-a/clouddetect] {"ts":"t","msg":"request","method":"POST","path":"/api/object_detection","status":200,"pod":"clouddetect-a","node":"worker-1"}
[pod/clouddetect-b/clouddetect] {"ts":"t","msg":"request","method":"POST","path":"/api/object_detection","status":200,"pod":"clouddetect-b","node":"worker-2"}
[pod/clouddetect-a/clouddetect] {"ts":"t","msg":"request","method":"POST","path":"/api/object_detection","status":200,"pod":"clouddetect-a","node":"worker-1"}
[pod/clouddetect-b/clouddetect] {"ts":"t","msg":"request","method":"GET","path":"/readyz","status":200,"pod":"clouddetect-b","node":"worker-2"}
LOGS
spread="$(FAKE_LOGS="$tmp/logs.txt" FAKE_STATE="$tmp/state" PATH="$tmp/fake:$PATH" bash "$here/request-spread.sh" | tr -s ' ')"
if [[ "$spread" == *"2 clouddetect-a worker-1"*"1 clouddetect-b worker-2"*"3 total over 2 pods"* ]]; then
  pass "request-spread.sh counts requests per pod from the logs: $(echo "$spread" | tr '\n' ';')"
else
  fail "request-spread.sh: '$spread'"
fi

echo "$passes passed, $failures failed"
[[ $failures -eq 0 ]]
