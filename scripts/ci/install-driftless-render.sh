#!/usr/bin/env bash
# Tools for crates/driftless-render tests:
# - helm v3.16.3: the pipeline's Helm output is compared with `helm template` run
#   directly (the same pinned copy crates/driftless-kustomize uses; the tests look
#   in ~/.cache/driftless/helm-v3.16.3/, or $DRIFTLESS_HELM);
# - go-jsonnet v0.20.0: the reference Jsonnet implementation, the oracle for the
#   in-process evaluator (~/.cache/driftless/jsonnet-v0.20.0/, or $DRIFTLESS_JSONNET).
# Idempotent: binaries already in ~/.cache/driftless/<tool>-<version>/ are reused.
set -euo pipefail

if ! command -v go >/dev/null 2>&1; then
  if [[ -x /usr/local/go/bin/go ]]; then
    export PATH="/usr/local/go/bin:${PATH}"
  else
    apt-get update
    apt-get install -y --no-install-recommends golang-go ca-certificates
  fi
fi

# go_install NAME VERSION MODULE-PATH
go_install() {
  local name="$1" version="$2" module="$3"
  local dest="${HOME}/.cache/driftless/${name}-${version}"
  if [[ -x "${dest}/${name}" ]]; then
    echo "${name} ${version} already in ${dest}"
    return
  fi
  mkdir -p "${dest}"
  GOBIN="${dest}" GOFLAGS=-mod=mod go install "${module}@${version}"
  echo "installed ${name} ${version} in ${dest}"
}

go_install helm v3.16.3 helm.sh/helm/v3/cmd/helm
go_install jsonnet v0.20.0 github.com/google/go-jsonnet/cmd/jsonnet
