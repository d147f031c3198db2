#!/usr/bin/env bash
# Builds the image `debian:bookworm-slim` locally with debootstrap, for machines that reach
# Debian's package mirror but no container registry. The result is close to the official slim
# image: minbase variant, no apt lists or caches, no docs/man/locales, and the same dpkg
# path-excludes so that packages installed later stay slim too.
#
# usage: deploy/docker/make-base-image.sh [--tag debian:bookworm-slim] [--mirror URL] [--force] [--dry-run]
# Skips the work when the tag already exists (debootstrap takes about a minute) unless --force.
set -euo pipefail

tag="debian:bookworm-slim"
# Raised whenever the slimming below changes, so that deploy/docker/common.sh makes the base again.
base_version=2
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
force=0
dry_run=0

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --tag) tag="$2"; shift 2 ;;
    --mirror) mirror="$2"; shift 2 ;;
    --force) force=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

run() {
  if [[ $dry_run -eq 1 ]]; then
    printf '+ %s\n' "$*"
  else
    "$@"
  fi
}

if [[ $force -eq 0 && $dry_run -eq 0 ]] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag exists; skipping debootstrap (use --force to rebuild)"
  exit 0
fi

if [[ $dry_run -eq 0 ]]; then
  command -v debootstrap >/dev/null || { echo "debootstrap is missing: install it with scripts/deps.sh docker" >&2; exit 1; }
  [[ $(id -u) -eq 0 ]] || { echo "debootstrap needs root" >&2; exit 1; }
fi

rootfs="$(mktemp -d /tmp/clouddetect-rootfs.XXXXXX)"
cleanup() { rm -rf "$rootfs"; }
trap cleanup EXIT

run debootstrap --variant=minbase bookworm "$rootfs" "$mirror"

slim_rootfs() {
  local r="$1"
  cat >"$r/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security_mirror bookworm-security main
SOURCES
  # Same settings as the official Debian images (debuerreotype's slim variant).
  cat >"$r/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
DPKG
  cat >"$r/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
  echo 'Acquire::GzipIndexes "true";' >"$r/etc/apt/apt.conf.d/docker-gzip-indexes"
  # As Docker's own Debian images: no fsync per unpacked file (a container is thrown away on a crash
  # anyway); on a busy shared disk it makes a package install several times faster.
  echo 'force-unsafe-io' >"$r/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  echo 'APT::AutoRemove::SuggestsImportant "false";' >"$r/etc/apt/apt.conf.d/docker-autoremove-suggests"
  rm -rf "$r"/var/cache/apt/* "$r"/var/lib/apt/lists/* "$r"/usr/share/man/* "$r"/usr/share/info/* \
    "$r"/usr/share/locale/* "$r"/var/log/*.log "$r"/var/log/apt/* "$r"/tmp/*
  find "$r/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
}

if [[ $dry_run -eq 1 ]]; then
  echo "+ (slim $rootfs: apt sources, dpkg path-excludes, remove caches/docs/man/locales)"
  echo "+ chmod 0755 $rootfs"
else
  slim_rootfs "$rootfs"
  # mktemp -d made the folder 0700; as the image's / that would lock out every non-root user.
  chmod 0755 "$rootfs"
fi

if [[ $dry_run -eq 1 ]]; then
  printf '+ tar --numeric-owner -C %s -c . | docker import --change "ENV PATH=..." --change "CMD [\\"bash\\"]" - %s\n' "$rootfs" "$tag"
else
  tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' --change "LABEL org.clouddetect.base-version=$base_version" - "$tag" >/dev/null
  if ! docker run --rm --network none --user 65534:65534 "$tag" /bin/ls / >/dev/null; then
    echo "the new $tag does not let a non-root user list /" >&2
    exit 1
  fi
  echo "built $tag: $(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
fi
