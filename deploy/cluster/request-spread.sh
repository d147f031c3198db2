#!/usr/bin/env bash
# Counts the requests each pod served, from the pods' JSON request log lines: shows that the
# NodePort Service spreads requests across pods.
#
# usage: request-spread.sh [--namespace clouddetect] [--selector app=clouddetect] [--since 10m]
#                          [--kubeconfig FILE] [--dry-run]
#
# Output: one line per pod, "<requests> <pod> <node>", then the total. Runs
#   kubectl logs -l app=clouddetect --prefix --tail=-1 --since=10m
# (--tail=-1: with -l, kubectl otherwise keeps only the last 10 lines of each pod).
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

namespace="clouddetect"
selector="app=clouddetect"
since="10m"
kubectl=(kubectl)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --namespace|-n) namespace="$2"; shift 2 ;;
    --selector|-l) selector="$2"; shift 2 ;;
    --since) since="$2"; shift 2 ;;
    --kubeconfig) kubectl+=(--kubeconfig "$2"); shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done

logs_cmd=("${kubectl[@]}" --namespace "$namespace" logs -l "$selector" --prefix --tail=-1
  "--since=$since" --max-log-requests 64)
if [[ "$DRY_RUN" == 1 ]]; then
  run "${logs_cmd[@]}"
  exit 0
fi
# Lines look like: [pod/clouddetect-6d9f-abcde/clouddetect] {"ts":...,"msg":"request",...,"pod":"...","node":"..."}
"${logs_cmd[@]}" | awk '
  /"msg":"request"/ && /"path":"\/api\/object_detection"/ {
    pod = $1; sub(/^\[pod\//, "", pod); sub(/\/.*$/, "", pod)
    node = "-"
    if (match($0, /"node":"[^"]*"/)) node = substr($0, RSTART + 8, RLENGTH - 9)
    n[pod] += 1; where[pod] = node; total += 1
  }
  END {
    for (p in n) printf "%8d %s %s\n", n[p], p, where[p] | "sort -k1,1nr -k2"
    close("sort -k1,1nr -k2")
    printf "%8d total over %d pods\n", total, length(n)
  }'
