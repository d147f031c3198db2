#!/bin/sh
# collect-runtime-libs BINARY OUTDIR BASE_LIBS
# Copies every shared library that BINARY loads (ldd) and that the runtime base image lacks
# (BASE_LIBS: one file name a line) into OUTDIR/usr/local/lib, named by soname; copies each
# owning package's copyright file; writes OUTDIR/usr/local/share/clouddetect/runtime-libs.txt
# (soname, package, version, bytes) so the image says what it carries.
set -eu
bin="$1"
out="$2"
base_libs="$3"

if ldd "$bin" | grep 'not found'; then
  echo "collect-runtime-libs: $bin has unresolved libraries" >&2
  exit 1
fi

mkdir -p "$out/usr/local/lib" "$out/usr/local/share/clouddetect"
manifest="$out/usr/local/share/clouddetect/runtime-libs.txt"
: >"$manifest"

ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r soname path; do
  if grep -qxF "$soname" "$base_libs"; then
    continue
  fi
  real=$(readlink -f "$path")
  cp "$real" "$out/usr/local/lib/$soname"
  chmod 0644 "$out/usr/local/lib/$soname"
  # dpkg knows the path before usrmerge (/lib/...) or after (/usr/lib/...), the link or the file.
  pkg=""
  for candidate in "$path" "$real" "${path#/usr}" "${real#/usr}" "/usr$path" "/usr$real"; do
    pkg=$(dpkg -S "$candidate" 2>/dev/null | head -n1 | cut -d: -f1) && [ -n "$pkg" ] && break
  done
  version=$( [ -n "$pkg" ] && dpkg-query -W -f '${Version}' "$pkg" 2>/dev/null || echo "?")
  if [ -n "$pkg" ] && [ -f "/usr/share/doc/$pkg/copyright" ]; then
    mkdir -p "$out/usr/share/doc/$pkg"
    cp "/usr/share/doc/$pkg/copyright" "$out/usr/share/doc/$pkg/copyright"
  fi
  printf '%s %s %s %s\n' "$soname" "${pkg:-?}" "$version" "$(wc -c <"$real")" >>"$manifest"
done

sort -k4 -n -r -o "$manifest" "$manifest"
total=$(awk '{s += $4} END {printf "%.1f", s / 1048576}' "$manifest")
echo "collect-runtime-libs: $(wc -l <"$manifest") libraries, $total MiB; largest:"
head -n 10 "$manifest"
