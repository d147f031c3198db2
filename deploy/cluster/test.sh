#!/usr/bin/env bash
# CI test of deploy/cluster (and every other deploy/ shell script), as far as a machine without
# a cluster allows: bash -n and shellcheck on each script; each cluster script's --dry-run,
# checked for the commands it must print and checked to run none of them (every command that
# would change a machine is a recording stub on PATH); bootstrap.sh's dry run for a controller
# and two workers checked for every step in order (Docker Engine, CRI on in Docker's containerd,
# kubeadm init, Flannel, joins, image build on the controller, import on each node); the
# containerd config.toml node-prepare.sh writes, parsed as TOML (containerd_config_check.py) and
# run by this machine's real containerd (CRI plugin loads; an image imported with
# `ctr -n k8s.io images import -` gets the name the kubelet asks for); version picking against a
# stub apt-cache; scale.sh's wait loop against a fake kubectl (scale up, scale down past
# terminating pods, timeout). About 30 s on a quiet machine. Needs root, containerd and ctr
# (scripts/deps.sh docker), shellcheck, kubectl, /usr/bin/python3 >= 3.11.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deploy="$(cd "$here/.." && pwd)"

passes=0
failures=0
pass() { passes=$((passes + 1)); echo "PASS $*"; }
fail() { failures=$((failures + 1)); echo "FAIL $*"; }

tmp="$(mktemp -d /tmp/clouddetect-cluster-test.XXXXXX)"
daemon_pid=""
cleanup() {
  if [[ -n "$daemon_pid" ]]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- static checks -----------------------------------------------------------------------------
mapfile -t scripts < <(find "$deploy" -name '*.sh' -type f | sort)
for s in "${scripts[@]}"; do
  if bash -n "$s" 2>"$tmp/err"; then :; else fail "bash -n ${s#"$deploy"/}: $(cat "$tmp/err")"; continue; fi
done
pass "bash -n on ${#scripts[@]} scripts"

if command -v shellcheck >/dev/null; then
  if shellcheck -x "${scripts[@]}" >"$tmp/shellcheck.txt" 2>&1; then
    pass "shellcheck $(shellcheck --version | awk '/^version/ {print $2}') clean on ${#scripts[@]} scripts"
  else
    cat "$tmp/shellcheck.txt"
    fail "shellcheck"
  fi
else
  fail "shellcheck not installed (scripts/deps.sh test installs it)"
fi

# ---- dry runs: print everything, run nothing -----------------------------------------------------
mkdir -p "$tmp/stubs"
for cmd in apt-get apt-mark apt-cache dpkg dpkg-query systemctl swapoff modprobe sysctl iptables ufw \
  netfilter-persistent containerd crictl ctr curl gpg kubeadm kubelet kubectl ssh scp docker install \
  usermod pgrep chmod tar git; do
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
  "https://download.docker.com/linux/ubuntu/gpg" "docker-ce=<newest docker-ce matching ^5:28" \
  "containerd.io=<newest containerd.io matching ^1" "apt-mark hold docker-ce docker-ce-cli containerd.io" \
  "write /etc/containerd/config.toml" "systemctl restart containerd" \
  "pkgs.k8s.io/core:/stable:/v1.30/deb" "kubeadm=" "apt-mark hold kubelet kubeadm kubectl" \
  "+ docker version" "+ containerd --version" "+ kubeadm version" \
  "--dport 10250" "--dport 30500" "--dport 8472" "FORWARD -s 10.244.0.0/16" -- --role worker
dry node-prepare.sh "--dport 6443" "--dport 2379:2380" -- --role control-plane
dry open-firewall.sh "--dport 30500" "netfilter-persistent save" -- --role worker
dry control-plane-init.sh "kubeadm init" "--pod-network-cidr 10.244.0.0/16" \
  "--cri-socket unix:///run/containerd/containerd.sock" \
  "--apiserver-cert-extra-sans 203.0.113.10" "flannel/releases/download/v0.25.6/kube-flannel.yml" \
  "kubeadm token create --print-join-command" -- --public-ip 203.0.113.10
dry bootstrap.sh "ubuntu@10.0.0.10 sudo env" "node-prepare.sh --role control-plane" \
  "ubuntu@10.0.0.11 sudo kubeadm join" "ubuntu@10.0.0.12 sudo kubeadm join" "control-plane-init.sh" \
  "wait --for=condition=Ready nodes --all" "node-role.kubernetes.io/worker=" "6/6 skipped (no --model)" -- \
  --controller ubuntu@10.0.0.10 --worker ubuntu@10.0.0.11 --worker ubuntu@10.0.0.12
dry load-image.sh "docker save clouddetect:0.1.0 | ssh" "ubuntu@10.0.0.11 sudo ctr -n k8s.io images import -" \
  "ubuntu@10.0.0.12 sudo ctr -n k8s.io images import -" "crictl inspecti clouddetect:0.1.0" -- \
  --image clouddetect:0.1.0 --node ubuntu@10.0.0.11 --node ubuntu@10.0.0.12
dry load-image.sh "+ docker save clouddetect:0.1.0 | ctr -n k8s.io images import -" "+ crictl inspecti clouddetect:0.1.0" -- \
  --image clouddetect:0.1.0 --local
dry load-image.sh "ubuntu@10.0.0.10 sudo docker save clouddetect:0.1.0 | ssh" \
  "ubuntu@10.0.0.11 sudo ctr -n k8s.io images import -" -- \
  --image clouddetect:0.1.0 --from ubuntu@10.0.0.10 --node ubuntu@10.0.0.11
dry build-image.sh "docker build -f deploy/Dockerfile --build-arg MODEL_DIR=models/yolo-fastest-1.1 -t clouddetect:0.1.0 ." \
  "cp -rT /srv/yolo-fastest-1.1" "+ docker save clouddetect:0.1.0 | ctr -n k8s.io images import -" \
  "ubuntu@10.0.0.11 sudo ctr -n k8s.io images import -" -- \
  --model /srv/yolo-fastest-1.1 --node ubuntu@10.0.0.11
dry load-image.sh "docker push registry.example.com/team/clouddetect:0.1.0" -- \
  --image clouddetect:0.1.0 --registry registry.example.com/team
dry scale.sh "kubectl --namespace clouddetect scale deployment/clouddetect --replicas 4" -- --replicas 4
dry scale.sh "kubectl --kubeconfig k.conf --namespace exp scale deployment/cd --replicas 8" -- \
  --replicas 8 --namespace exp --deployment cd --kubeconfig k.conf
dry request-spread.sh "logs -l app=clouddetect --prefix --tail=-1 --since=10m" --
dry ../docker/make-base-image.sh "debootstrap --variant=minbase bookworm" "docker import" -- --force

# ---- the whole cluster, in order: bootstrap.sh --dry-run for a controller and two workers -------
# in_order FILE STRING...: each STRING (fixed) on a line after the previous one's; prints the first
# one missing or out of order.
in_order() {
  local file="$1"; shift
  local line=0 s next
  for s in "$@"; do
    next="$(awk -v after="$line" -v s="$s" 'NR > after && index($0, s) {print NR; exit}' "$file")"
    if [[ -z "$next" ]]; then
      printf '%s' "$s"
      return 1
    fi
    line="$next"
  done
}
c=ubuntu@10.0.0.10 w1=ubuntu@10.0.0.11 w2=ubuntu@10.0.0.12
boot="$tmp/bootstrap-all.out"
if PATH="$tmp/stubs:$PATH" bash "$here/bootstrap.sh" --dry-run --controller "$c" --worker "$w1" --worker "$w2" \
  --model /srv/models/yolo-fastest-1.1 >"$boot" 2>&1; then
  node_steps() { # what node-prepare.sh must print on node $1, in order
    printf '%s\n' "[$1] + swapoff -a" "[$1] + modprobe br_netfilter" "[$1] + netfilter-persistent save" \
      "[$1] + curl -fsSL https://download.docker.com/linux/ubuntu/gpg" \
      "[$1] + apt-get install -y -q --allow-change-held-packages 'docker-ce=" \
      "[$1] + apt-mark hold docker-ce docker-ce-cli containerd.io" "[$1] + usermod -aG docker ubuntu" \
      "[$1] + write /etc/containerd/config.toml:" "[$1] |   disabled_plugins = []" \
      "[$1] |     SystemdCgroup = true" "[$1] + write /etc/crictl.yaml:" "[$1] + systemctl restart containerd" \
      "[$1] + systemctl restart docker" "[$1] + apt-get install -y -q --allow-change-held-packages 'kubelet=" \
      "[$1] + apt-mark hold kubelet kubeadm kubectl" "[$1] + crictl info" "[$1] + docker version" \
      "[$1] + containerd --version" "[$1] + kubeadm version"
  }
  mapfile -t order < <(
    for n in "$c" "$w1" "$w2"; do
      printf '%s\n' "$n sudo env" ; node_steps "$n"
    done
    printf '%s\n' "[$c] + kubeadm init --kubernetes-version '<kubeadm version -o short>' --pod-network-cidr 10.244.0.0/16 --cri-socket unix:///run/containerd/containerd.sock" \
      "[$c] + kubectl apply -f https://github.com/flannel-io/flannel/releases/download/v0.25.6/kube-flannel.yml" \
      "[$c] + kubectl -n kube-flannel rollout status daemonset/kube-flannel-ds" \
      "$w1 sudo kubeadm join" "$w2 sudo kubeadm join" "wait --for=condition=Ready nodes --all" \
      "ls-files -z | tar" "$c 'tar -xzf - -C clouddetect-src/models'" \
      "$c bash clouddetect-src/deploy/cluster/build-image.sh --model clouddetect-src/models/yolo-fastest-1.1" \
      "[$c] + cd ~/clouddetect-src && docker build -f deploy/Dockerfile --build-arg MODEL_DIR=models/yolo-fastest-1.1 -t clouddetect:0.1.0 ." \
      "[$c] + docker save clouddetect:0.1.0 | ctr -n k8s.io images import -" "[$c] + crictl inspecti clouddetect:0.1.0" \
      "$w1 sudo ctr -n k8s.io images import -" "$w1 sudo crictl inspecti" \
      "$w2 sudo ctr -n k8s.io images import -" "$w2 sudo crictl inspecti"
  )
  # Each worker's import reads the controller's `docker save`.
  from_controller="$(grep -F "$c sudo docker save clouddetect:0.1.0 | ssh" "$boot" | grep -cF -e "$w1 sudo ctr" -e "$w2 sudo ctr")"
  if out_of_order="$(in_order "$boot" "${order[@]}")" && [[ $from_controller -eq 2 ]]; then
    pass "bootstrap.sh --dry-run, controller + 2 workers: ${#order[@]} steps in order, $(grep -c '+ ' "$boot") commands (Docker Engine, CRI in its containerd, kubeadm init, Flannel, joins, build on the controller, import on each node)"
  else
    fail "bootstrap.sh --dry-run: missing or out of order: '$out_of_order'; imports from the controller: $from_controller of 2"
  fi
  # One runtime: no cri-dockerd, no second containerd (Ubuntu's containerd, docker.io) installed;
  # the same CRI socket for kubeadm init and both joins.
  second="$(grep -E '\+ apt-get install.*( |^)(cri-dockerd|containerd|docker\.io|runc)( |$)' "$boot" || true)"
  sockets="$(grep -c -- "--cri-socket unix:///run/containerd/containerd.sock" "$boot" || true)"
  if [[ -z "$second" && "$sockets" -eq 4 ]]; then
    pass "bootstrap.sh --dry-run: one runtime per node (no cri-dockerd, no second containerd); kubeadm init and both joins name Docker's containerd socket"
  else
    fail "bootstrap.sh --dry-run: second runtime installed: '$second', --cri-socket lines $sockets (want 4: the log line, init, 2 joins)"
  fi
else
  tail -n 5 "$boot"
  fail "bootstrap.sh --dry-run with --model: exit non-zero"
fi

# ---- the containerd config node-prepare.sh writes, parsed as TOML ------------------------------
python=/usr/bin/python3
np="$tmp/node-prepare.out"
PATH="$tmp/stubs:$PATH" bash "$here/node-prepare.sh" --dry-run --role worker >"$np" 2>/dev/null
# written_file PATH: the content node-prepare.sh --dry-run shows for PATH.
written_file() {
  awk -v path="$1" '
    $0 == "+ write " path ":" {inside = 1; next}
    inside && /^\|   / {print substr($0, 5); next}
    inside && /^\|$/ {print ""; next}
    inside {exit}' "$np"
}
written_file /etc/containerd/config.toml >"$tmp/config.toml"
written_file /etc/crictl.yaml >"$tmp/crictl.yaml"
if ! "$python" -c 'import tomllib' 2>/dev/null; then
  fail "$python lacks tomllib (Python >= 3.11: scripts/deps.sh test installs it)"
else
  check=("$python" "$here/containerd_config_check.py" --sandbox-image registry.k8s.io/pause:3.9 --socket /run/containerd/containerd.sock)
  if out="$("${check[@]}" "$tmp/config.toml")"; then
    pass "config.toml from node-prepare.sh parses as TOML and suits the kubelet: ${out#*: }"
  else
    fail "config.toml from node-prepare.sh: $out"; cat "$tmp/config.toml"
  fi
  # The checker must refuse what Docker's containerd.io ships (CRI disabled) and a cgroupfs runc.
  printf '%s\n' 'disabled_plugins = ["cri"]' '' '#root = "/var/lib/containerd"' >"$tmp/shipped.toml"
  sed 's/SystemdCgroup = true/SystemdCgroup = false/' "$tmp/config.toml" >"$tmp/cgroupfs.toml"
  if ! shipped="$("${check[@]}" "$tmp/shipped.toml")" && [[ "$shipped" == *"CRI plugin is disabled"* ]] &&
    ! cgroupfs="$("${check[@]}" "$tmp/cgroupfs.toml")" && [[ "$cgroupfs" == *"SystemdCgroup is not true"* ]]; then
    pass "containerd_config_check.py refuses containerd.io's shipped config (CRI disabled) and SystemdCgroup = false"
  else
    fail "containerd_config_check.py accepted a bad config: '$shipped' / '$cgroupfs'"
  fi
  # One socket everywhere: containerd's gRPC address = crictl's endpoint = kubeadm's --cri-socket.
  address="$("$python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["grpc"]["address"])' "$tmp/config.toml")"
  init="$(PATH="$tmp/stubs:$PATH" bash "$here/control-plane-init.sh" --dry-run 2>/dev/null | grep '^+ kubeadm init')"
  if grep -qx "runtime-endpoint: unix://$address" "$tmp/crictl.yaml" && grep -qx "image-endpoint: unix://$address" "$tmp/crictl.yaml" &&
    [[ "$init" == *"--cri-socket unix://$address"* ]]; then
    pass "one containerd socket: config.toml grpc.address $address = crictl.yaml endpoints = kubeadm init --cri-socket"
  else
    fail "containerd socket differs: config.toml '$address', crictl.yaml '$(tr '\n' ' ' <"$tmp/crictl.yaml")', '$init'"
  fi
fi

# ---- that config in a real containerd 1.x (this machine's), then an image imported as on a node --
# The written config with only root, state and sockets moved into $tmp: the CRI plugin must load;
# with containerd.io's shipped config it must not. A `docker save`-format archive (manifest.json,
# config, one layer, as Docker writes it) imported with `ctr -n k8s.io images import -` must be
# named docker.io/library/clouddetect:0.1.0, the name the kubelet resolves clouddetect:0.1.0 to, and
# seen by the CRI plugin.
# start_containerd CONFIG: starts a private containerd on $tmp/ctrd/c.sock; 0 once it answers.
# Root, state, socket and the opt plugin's path go to $tmp/ctrd (the opt plugin is named by its
# URI in config version 2, by its short name in version 1, the shipped file's).
start_containerd() {
  local d="$tmp/ctrd" opt='plugins."io.containerd.internal.v1.opt"'
  rm -rf "$d"; mkdir -p "$d"
  grep -q '^version = 2' "$1" || opt="plugins.opt"
  { printf 'root = "%s/root"\nstate = "%s/state"\n' "$d" "$d"
    sed '/^\[grpc\]/,/^$/d' "$1"
    printf '\n[grpc]\n  address = "%s/c.sock"\n\n[%s]\n  path = "%s/opt"\n' "$d" "$opt" "$d"
  } >"$d/config.toml"
  containerd --config "$d/config.toml" >"$d/log" 2>&1 &
  daemon_pid=$!
  local tries
  for tries in $(seq 50 -1 1); do
    kill -0 "$daemon_pid" 2>/dev/null || { daemon_pid=""; return 1; }
    timeout 2 ctr --address "$d/c.sock" version >/dev/null 2>&1 && return 0
    [[ $tries -gt 1 ]] && sleep 0.2
  done
  return 1
}
stop_containerd() {
  kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=""
}
if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
  fail "containerd/ctr not installed (scripts/deps.sh docker: Debian's docker.io brings containerd 1.6)"
elif [[ $(id -u) -ne 0 ]]; then
  fail "a real containerd needs root: run deploy/cluster/test.sh as root"
else
  sock="$tmp/ctrd/c.sock"
  cri_status=""
  if start_containerd "$tmp/config.toml"; then
    cri_status="$(ctr --address "$sock" plugins ls | awk '$2 == "cri" {print $4}')"
    # An archive in the format `docker save` writes: manifest.json + config + layer tar.
    "$python" - "$tmp/image.tar" <<'ARCHIVE'
import hashlib, io, json, sys, tarfile
def tar_bytes(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files:
            info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
    return buf.getvalue()
layer = tar_bytes([("hello.txt", b"clouddetect\n")])
diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
                     "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
config_name = hashlib.sha256(config).hexdigest() + ".json"
manifest = json.dumps([{"Config": config_name, "RepoTags": ["clouddetect:0.1.0"],
                        "Layers": ["layer0/layer.tar"]}]).encode()
open(sys.argv[1], "wb").write(tar_bytes([(config_name, config), ("layer0/layer.tar", layer),
                                          ("manifest.json", manifest)]))
ARCHIVE
    ctr --address "$sock" -n k8s.io images import - <"$tmp/image.tar" >"$tmp/import.log" 2>&1 || true
    imported="$(ctr --address "$sock" -n k8s.io images ls -q 2>/dev/null | tr '\n' ' ')"
    stop_containerd
  fi
  printf '%s\n' 'disabled_plugins = ["cri"]' >"$tmp/shipped-run.toml"
  shipped_cri="not started"
  if start_containerd "$tmp/shipped-run.toml"; then
    shipped_cri="$(ctr --address "$sock" plugins ls | awk '$2 == "cri" {print $4}')"
    stop_containerd
  fi
  version="$(containerd --version | awk '{print $3}')"
  if [[ "$cri_status" == ok && -z "$shipped_cri" ]]; then
    pass "containerd $version runs the written config with the CRI plugin ok; with containerd.io's shipped config it has no CRI plugin"
  else
    fail "containerd $version: CRI plugin '$cri_status' with the written config (want ok), '$shipped_cri' with the shipped one (want none); $(tail -n 3 "$tmp/ctrd/log" 2>/dev/null)"
  fi
  # The CRI plugin indexes every image in k8s.io under its ID too (sha256:<config digest>).
  if [[ "$imported" =~ ^docker\.io/library/clouddetect:0\.1\.0\ sha256:[0-9a-f]{64}\ $ ]]; then
    pass "ctr -n k8s.io images import of a docker-save archive names it docker.io/library/clouddetect:0.1.0 (what the kubelet asks for), and the CRI plugin indexes it by ID"
  else
    fail "ctr import: images in k8s.io '${imported:-}', want docker.io/library/clouddetect:0.1.0; $(tail -n 3 "$tmp/import.log" 2>/dev/null)"
  fi
fi

# ---- version picking against a stub apt-cache (realistic madison output) -----------------------
mkdir -p "$tmp/madison"
cat >"$tmp/madison/apt-cache" <<'MADISON'
#!/bin/sh
case "$2" in
docker-ce) for v in 5:29.1.2-1~ubuntu.22.04~jammy 5:28.5.2-1~ubuntu.22.04~jammy 5:28.5.1-1~ubuntu.22.04~jammy 5:27.5.1-1~ubuntu.22.04~jammy; do
  echo " docker-ce | $v | https://download.docker.com/linux/ubuntu jammy/stable amd64 Packages"; done ;;
containerd.io) for v in 2.1.5-1~ubuntu.22.04~jammy 1.7.28-1~ubuntu.22.04~jammy 1.7.27-1; do
  echo "containerd.io | $v | https://download.docker.com/linux/ubuntu jammy/stable amd64 Packages"; done ;;
kubeadm) for v in 1.30.14-1.1 1.30.13-1.1; do
  echo "   kubeadm | $v | https://pkgs.k8s.io/core:/stable:/v1.30/deb  Packages"; done ;;
esac
MADISON
chmod +x "$tmp/madison/apt-cache"
# shellcheck disable=SC2016 # expanded by the inner bash
pick='. "$1/common.sh"; package_version "$2" "$3" "$4"'
picked="$(for args in "docker-ce||^5:28\\." "containerd.io||^1\\.7\\." "kubeadm||^1\\.30\\." "docker-ce|5:27.5.1-1~ubuntu.22.04~jammy|^5:28\\."; do
  IFS='|' read -r pkg pin re <<<"$args"
  PATH="$tmp/madison:$PATH" bash -c "$pick" _ "$here" "$pkg" "$pin" "$re"
done | tr '\n' ' ')"
want="5:28.5.2-1~ubuntu.22.04~jammy 1.7.28-1~ubuntu.22.04~jammy 1.30.14-1.1 5:27.5.1-1~ubuntu.22.04~jammy "
if [[ "$picked" == "$want" ]] && ! PATH="$tmp/madison:$PATH" bash -c "set -e; $pick" _ "$here" docker-ce "" '^5:99\.' 2>"$tmp/pick.err" >/dev/null &&
  grep -q "no docker-ce version matching" "$tmp/pick.err"; then
  pass "package_version picks the newest docker-ce 28.x, containerd.io 1.7.x (not 2.x), kubeadm 1.30.x; keeps a pin; fails on no match"
else
  fail "package_version: picked '$picked', want '$want'; $(cat "$tmp/pick.err")"
fi

# The image build-image.sh builds by default is the one the manifests run: rendered by kubectl where
# it is installed (Debian 12 has none that can: deploy/k8s/test.sh), else read from the base's
# `images:` transform, which no overlay or component overrides.
if command -v kubectl >/dev/null; then
  rendered="$(kubectl kustomize "$deploy/k8s/overlays/replicas-1" | sed -n 's/^ *image: *//p' | sort -u)"
  how="rendered by kubectl kustomize"
elif ! grep -rlq '^images:' "$deploy/k8s/overlays" "$deploy/k8s/components"; then
  rendered="$(/usr/bin/python3 -c 'import sys, yaml
image = yaml.safe_load(open(sys.argv[1]))["images"][0]
print("%s:%s" % (image.get("newName", image["name"]), image["newTag"]))' "$deploy/k8s/base/kustomization.yaml")"
  how="read from deploy/k8s/base/kustomization.yaml (no kubectl here)"
else
  rendered="" how="an overlay overrides images: and there is no kubectl to render it"
fi
built="$(PATH="$tmp/stubs:$PATH" bash "$here/build-image.sh" --dry-run --model models/m 2>/dev/null | sed -n 's/.* -t \([^ ]*\) .*/\1/p')"
if [[ -n "$built" && "$rendered" == "$built" ]]; then
  pass "build-image.sh builds $built, the image the manifests run ($how)"
else
  fail "build-image.sh builds '$built', the manifests run '$rendered' ($how)"
fi

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
