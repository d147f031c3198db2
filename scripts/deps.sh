#!/usr/bin/env bash
# Installs the Debian 12 packages CloudDetect needs. Usage: scripts/deps.sh [build|test]
# "build": compile and run the service. "test": also what the test suite uses.
set -euo pipefail
what=${1:-build}
build_pkgs=(cmake g++ make pkg-config curl unzip ca-certificates
  libopencv-dev libboost1.81-dev libboost-json1.81-dev libspdlog-dev libcli11-dev libdnnl-dev libturbojpeg0-dev libpng-dev)
test_pkgs=(libgtest-dev libgmock-dev python3 python3-opencv python3-numpy python3-pytest python3-yaml
  python3-jsonschema python3-flask python3-locust python3-matplotlib haproxy clang clang-format libclang-rt-14-dev
  shellcheck chromium libxnnpack-dev libpthreadpool-dev libcpuinfo-dev)
pkgs=("${build_pkgs[@]}")
[ "$what" = test ] && pkgs+=("${test_pkgs[@]}")
# Node.js may come from elsewhere (e.g. NodeSource, whose nodejs conflicts with Debian's npm): only
# ask Debian for it when there is no npm at all.
[ "$what" = test ] && ! command -v npm >/dev/null && pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "deps.sh: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
