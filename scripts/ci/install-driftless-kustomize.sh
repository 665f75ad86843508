#!/usr/bin/env bash
# Installs the reference kustomize (v5.5.0) used to regenerate the expected
# outputs of crates/driftless-kustomize/tests/corpus (tests/corpus/regenerate.sh).
# The test suite itself needs no external tool: expectations are committed.
# Idempotent: reuses ~/.cache/driftless/kustomize-v5.5.0/kustomize when present.
set -euo pipefail

version="v5.5.0"
dest="${HOME}/.cache/driftless/kustomize-${version}"
if [[ -x "${dest}/kustomize" ]]; then
  echo "kustomize ${version} already in ${dest}"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  if [[ -x /usr/local/go/bin/go ]]; then
    export PATH="/usr/local/go/bin:${PATH}"
  else
    apt-get update
    apt-get install -y --no-install-recommends golang-go ca-certificates
  fi
fi

mkdir -p "${dest}"
GOBIN="${dest}" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@${version}"
"${dest}/kustomize" version
