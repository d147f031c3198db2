#!/usr/bin/env bash
# The one place that names CloudDetect's Debian 12 packages, by purpose:
#   build       compile and serve (scripts/run.sh, deploy/Dockerfile's build stage)
#   experiment  the load test, the experiment runner and its plots, the peer benchmark (tools/)
#   docker      the container image and its test (deploy/docker/)
#   test        everything the whole suite uses (scripts/test.sh): build + experiment + docker + tests
# Usage:
#   scripts/deps.sh [PURPOSE...]          install the missing packages (default: build)
#   scripts/deps.sh --check PURPOSE...    install nothing; list the missing ones, exit 1 if any
#   scripts/deps.sh --list PURPOSE...     print the packages, one a line
# Installs with --no-install-recommends, so every package a step needs is named here (e.g. libdnnl-dev
# only recommends the OpenCL headers its CMake config requires).
set -euo pipefail

build_pkgs=(cmake g++ make pkg-config curl unzip ca-certificates
  libopencv-dev libboost1.81-dev libboost-json1.81-dev libspdlog-dev libcli11-dev
  libdnnl-dev ocl-icd-opencl-dev libturbojpeg0-dev libpng-dev)
# python3-munkres: matplotlib's fonttools wants scipy or munkres; left to choose, apt takes scipy,
# whose pythran pulls libboost-dev 1.74, which conflicts with libboost1.81-dev. Named together, it
# takes munkres.
experiment_pkgs=(python3 python3-locust python3-matplotlib python3-munkres python3-numpy haproxy
  python3-flask python3-opencv)
docker_pkgs=(docker.io debootstrap)
test_only_pkgs=(libgtest-dev libgmock-dev python3-pytest python3-yaml python3-jsonschema
  clang clang-format libclang-rt-14-dev shellcheck flake8 chromium libxnnpack-dev libpthreadpool-dev libcpuinfo-dev)

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

mode=install
case "${1:-}" in
  --check) mode=check; shift ;;
  --list) mode=list; shift ;;
  -h | --help) usage ;;
esac
[ $# -gt 0 ] || set -- build

pkgs=()
for purpose in "$@"; do
  case "$purpose" in
    build) pkgs+=("${build_pkgs[@]}") ;;
    experiment) pkgs+=("${experiment_pkgs[@]}") ;;
    docker) pkgs+=("${docker_pkgs[@]}") ;;
    test)
      pkgs+=("${build_pkgs[@]}" "${experiment_pkgs[@]}" "${docker_pkgs[@]}" "${test_only_pkgs[@]}")
      # Node.js may come from elsewhere (e.g. NodeSource, whose nodejs conflicts with Debian's npm):
      # only ask Debian for it when there is no npm at all.
      command -v npm >/dev/null || pkgs+=(nodejs npm)
      ;;
    *) echo "deps.sh: unknown purpose '$purpose'" >&2; usage ;;
  esac
done
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | awk '!seen[$0]++')

if [ "$mode" = list ]; then
  printf '%s\n' "${pkgs[@]}"
  exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$mode" = check ]; then
  echo "missing Debian packages: ${missing[*]}; install them with: scripts/deps.sh $*" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
# All in one command: apt resolves the set together (see python3-munkres above).
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
