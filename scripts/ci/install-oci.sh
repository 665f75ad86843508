#!/usr/bin/env bash
# Reference OCI registry for the artifact and chart tests: distribution's
# `registry` v3.0.0 (or $DRIFTLESS_OCI_REGISTRY), built once from its Go
# module into ~/.cache/driftless/registry-v3.0.0/ and reused when present.
# The Go build cache is the one every other tool of the test setup shares.
set -euo pipefail

version="v3.0.0"
dir="${HOME}/.cache/driftless/registry-${version}"

if [[ -n "${DRIFTLESS_OCI_REGISTRY:-}" ]]; then
  echo "registry from DRIFTLESS_OCI_REGISTRY: ${DRIFTLESS_OCI_REGISTRY}"
  exit 0
fi
if [[ -x "${dir}/registry" ]]; then
  echo "registry ${version} already in ${dir}"
  exit 0
fi
[[ -x /usr/local/go/bin/go ]] && export PATH="/usr/local/go/bin:${PATH}"
if ! command -v go >/dev/null 2>&1; then
  apt-get update
  apt-get install -y --no-install-recommends golang-go ca-certificates
fi
start=$SECONDS
mkdir -p "${dir}"
GOBIN="${dir}" GOFLAGS=-mod=mod go install \
  "github.com/distribution/distribution/v3/cmd/registry@${version}"
echo "installed registry ${version} in ${dir} after $((SECONDS - start))s"
