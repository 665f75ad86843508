#!/usr/bin/env bash
# Tools for crates/driftless-kustomize:
# - helm v3.16.3: the corpus cases with `--enable-helm` inflate local charts with it
#   (the tests look in ~/.cache/driftless/helm-v3.16.3/, or $DRIFTLESS_HELM);
# - kustomize v5.5.0: the reference that tests/corpus/regenerate.sh uses to
#   produce expected outputs (the tests themselves compare with committed files).
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
go_install kustomize v5.5.0 sigs.k8s.io/kustomize/kustomize/v5
