#!/usr/bin/env bash
# Scales the CloudDetect Deployment and waits until exactly N pods exist, all Ready, none
# terminating, and the Service has N ready endpoints: the state an experiment should start in.
# For the experiment runner.
#
# usage: scale.sh --replicas N [--namespace clouddetect] [--deployment clouddetect]
#                 [--timeout 300] [--kubeconfig FILE] [--dry-run]
#
# Prints progress on stderr and, on success, one line on stdout:
#   READY 4/4 pods in 23 s; per node: worker-1=2 worker-2=2
# Exit: 0 ready, 1 timeout or kubectl error (pods and recent events printed), 2 bad usage.
set -euo pipefail
# shellcheck source=common.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
replicas=""
namespace="clouddetect"
deployment="clouddetect"
timeout_s=300
kubectl=(kubectl)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --replicas) replicas="${2:-}"; shift 2 ;;
    --namespace|-n) namespace="${2:-}"; shift 2 ;;
    --deployment) deployment="${2:-}"; shift 2 ;;
    --timeout) timeout_s="${2:-}"; shift 2 ;;
    --kubeconfig) kubectl+=(--kubeconfig "${2:-}"); shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
if ! [[ "$replicas" =~ ^[0-9]+$ ]] || ! [[ "$timeout_s" =~ ^[1-9][0-9]*$ ]]; then
  echo "--replicas N (N >= 0) is required; --timeout must be a positive number of seconds" >&2
  usage >&2
  exit 2
fi
kubectl+=(--namespace "$namespace")

# shellcheck disable=SC2016 # Go templates, not shell expansions
pod_lines_template='{{range .items}}{{.metadata.name}} {{if .metadata.deletionTimestamp}}terminating{{else}}live{{end}} {{or .spec.nodeName "-"}} {{$r := "False"}}{{range .status.conditions}}{{if eq .type "Ready"}}{{$r = .status}}{{end}}{{end}}{{$r}}{{"\n"}}{{end}}'
endpoints_template='{{range .items}}{{range .endpoints}}{{if .conditions.ready}}x{{end}}{{end}}{{end}}'

if [[ "$DRY_RUN" == 1 ]]; then
  run "${kubectl[@]}" scale "deployment/$deployment" --replicas "$replicas"
  echo "+ repeat every 2 s, up to ${timeout_s} s, until $replicas pods, all live and Ready, and $replicas ready endpoints:"
  run "${kubectl[@]}" get pods -l "<the Deployment's spec.selector>" -o "go-template=$pod_lines_template"
  run "${kubectl[@]}" get endpointslices -l "kubernetes.io/service-name=<the Service selecting those pods, default $deployment>" -o "go-template=$endpoints_template"
  exit 0
fi

start=$SECONDS
# shellcheck disable=SC2016
selector="$("${kubectl[@]}" get "deployment/$deployment" \
  -o 'go-template={{range $k, $v := .spec.selector.matchLabels}}{{$k}}={{$v}},{{end}}')" ||
  die "deployment $deployment not found in namespace $namespace"
selector="${selector%,}"
[[ -n "$selector" ]] || die "deployment $deployment has no matchLabels selector"
service="${SERVICE:-$deployment}"

"${kubectl[@]}" scale "deployment/$deployment" --replicas "$replicas" >/dev/null
log "scaled deployment/$deployment to $replicas; waiting up to ${timeout_s}s (selector $selector)"

last=""
while :; do
  pods="$("${kubectl[@]}" get pods -l "$selector" -o "go-template=$pod_lines_template" 2>/dev/null || true)"
  total=0 live=0 ready=0 terminating=0
  while read -r _name state _node is_ready; do
    [[ -n "${state:-}" ]] || continue
    total=$((total + 1))
    if [[ "$state" == terminating ]]; then
      terminating=$((terminating + 1))
    else
      live=$((live + 1))
      [[ "$is_ready" == True ]] && ready=$((ready + 1))
    fi
  done <<<"$pods"
  endpoints="$("${kubectl[@]}" get endpointslices -l "kubernetes.io/service-name=$service" \
    -o "go-template=$endpoints_template" 2>/dev/null || true)"
  n_endpoints=${#endpoints}

  status="pods $total (ready $ready, terminating $terminating), ready endpoints $n_endpoints"
  [[ "$status" != "$last" ]] && log "$status"
  last="$status"
  if [[ $total -eq $replicas && $live -eq $replicas && $ready -eq $replicas && $n_endpoints -eq $replicas ]]; then
    spread="$(awk '$2 == "live" {n[$3]++} END {for (k in n) printf "%s=%d ", k, n[k]}' <<<"$pods" |
      tr ' ' '\n' | sort | tr '\n' ' ')"
    echo "READY $ready/$replicas pods in $((SECONDS - start)) s; per node: ${spread% }"
    exit 0
  fi
  if [[ $((SECONDS - start)) -ge $timeout_s ]]; then
    log "timeout after ${timeout_s}s: $status"
    "${kubectl[@]}" get pods -l "$selector" -o wide >&2 || true
    "${kubectl[@]}" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 15 >&2 || true
    exit 1
  fi
  sleep 2
done
