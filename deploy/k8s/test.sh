#!/usr/bin/env bash
# CI test of the Kubernetes manifests: renders every overlay with `kubectl kustomize`, validates
# each object against the v1.30.0 JSON schemas in $CLOUDDETECT_SHARED (default ../shared), checks
# the invariants, and checks that deliberately broken manifests are rejected. About 2 s.
# Needs: kubectl (or kustomize) and the YAML and JSON Schema Python modules (scripts/deps.sh test).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

python=/usr/bin/python3
if ! "$python" -c 'import yaml, jsonschema' 2>/dev/null; then
  echo "FAIL k8s: $python lacks yaml/jsonschema: install them with scripts/deps.sh test"
  exit 1
fi
if ! command -v kubectl >/dev/null && ! command -v kustomize >/dev/null; then
  # Debian 12 has no kubectl that can render these (its kubernetes-client 1.20 predates kustomize
  # components): on a machine without one, say so and skip rather than fail the whole suite.
  echo "SKIP k8s: kubectl >= 1.21 (with built-in kustomize) is not installed; it comes from Kubernetes' own apt repository (docs/DEPLOY.md)"
  exit 0
fi

if timeout 120 "$python" "$here/validate.py" --self-test; then
  echo "PASS deploy/k8s"
else
  echo "FAIL deploy/k8s"
  exit 1
fi
