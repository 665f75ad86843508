#!/usr/bin/env bash
# Reference tools for the crates/driftless-render tests, built once into
# ~/.cache/driftless/<tool>-<version>/ and reused when present:
# - helm v3.16.3 (or $DRIFTLESS_HELM): the pipeline's chart output is compared with
#   `helm template` run directly. The copy is the one install-driftless-kustomize.sh
#   builds; this script builds it only when that one has not run.
# - go-jsonnet v0.20.0 (or $DRIFTLESS_JSONNET): the oracle for the in-process evaluator.
set -euo pipefail

cache="${HOME}/.cache/driftless"
helm_bin="${cache}/helm-v3.16.3/helm"
jsonnet_bin="${cache}/jsonnet-v0.20.0/jsonnet"

if [[ -x "${helm_bin}" && -x "${jsonnet_bin}" ]]; then
  echo "helm and go-jsonnet already in ${cache}"
  exit 0
fi
if [[ ! -x "${helm_bin}" ]]; then
  bash "$(dirname "${BASH_SOURCE[0]}")/install-driftless-kustomize.sh"
fi
if [[ ! -x "${jsonnet_bin}" ]]; then
  # The kustomize script has made sure a Go toolchain exists by now.
  [[ -x /usr/local/go/bin/go ]] && export PATH="/usr/local/go/bin:${PATH}"
  if ! command -v go >/dev/null 2>&1; then
    apt-get update
    apt-get install -y --no-install-recommends golang-go ca-certificates
  fi
  mkdir -p "$(dirname "${jsonnet_bin}")"
  GOBIN="$(dirname "${jsonnet_bin}")" GOFLAGS=-mod=mod \
    go install github.com/google/go-jsonnet/cmd/jsonnet@v0.20.0
  echo "installed go-jsonnet v0.20.0 in $(dirname "${jsonnet_bin}")"
fi
