#!/usr/bin/env bash
# Reference receiver for the notification tests: Prometheus Alertmanager
# v0.28.1 (or $DRIFTLESS_ALERTMANAGER), built once from its Go module into
# ~/.cache/driftless/alertmanager-v0.28.1/ and reused when present. (The module
# of v0.35.0 lacks its built web assets, so `go install` cannot build that one.)
# The Go build cache is the one every other tool of the test setup shares.
set -euo pipefail

version="v0.28.1"
bin="${HOME}/.cache/driftless/alertmanager-${version}/alertmanager"

if [[ -n "${DRIFTLESS_ALERTMANAGER:-}" ]]; then
  echo "alertmanager from DRIFTLESS_ALERTMANAGER: ${DRIFTLESS_ALERTMANAGER}"
  exit 0
fi
if [[ -x "${bin}" ]]; then
  echo "alertmanager ${version} already in $(dirname "${bin}")"
  exit 0
fi
[[ -x /usr/local/go/bin/go ]] && export PATH="/usr/local/go/bin:${PATH}"
if ! command -v go >/dev/null 2>&1; then
  apt-get update
  apt-get install -y --no-install-recommends golang-go ca-certificates
fi
mkdir -p "$(dirname "${bin}")"
start=$SECONDS
GOBIN="$(dirname "${bin}")" GOFLAGS=-mod=mod \
  go install "github.com/prometheus/alertmanager/cmd/alertmanager@${version}"
echo "installed alertmanager ${version} in $(dirname "${bin}") after $((SECONDS - start))s"
