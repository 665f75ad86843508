#!/usr/bin/env bash
# Reference tools for the SOPS decryption tests: `sops` v3.13.3 (or
# $DRIFTLESS_SOPS) and `age`/`age-keygen` v1.3.2 (or $DRIFTLESS_AGE, the
# directory holding both), built once from their Go modules into
# ~/.cache/driftless/sops-v3.13.3/ and ~/.cache/driftless/age-v1.3.2/ and
# reused when present; GnuPG from Debian for the OpenPGP fixtures. The Go build
# cache is the one every other tool of the test setup shares.
set -euo pipefail

sops_version="v3.13.3"
age_version="v1.3.2"
sops_dir="${HOME}/.cache/driftless/sops-${sops_version}"
age_dir="${HOME}/.cache/driftless/age-${age_version}"

if ! command -v gpg >/dev/null 2>&1; then
  apt-get update
  apt-get install -y --no-install-recommends gnupg
fi

go_install() { # DIR MODULE...
  local dir="$1"
  shift
  [[ -x /usr/local/go/bin/go ]] && export PATH="/usr/local/go/bin:${PATH}"
  if ! command -v go >/dev/null 2>&1; then
    apt-get update
    apt-get install -y --no-install-recommends golang-go ca-certificates
  fi
  mkdir -p "${dir}"
  GOBIN="${dir}" GOFLAGS=-mod=mod go install "$@"
}

if [[ -n "${DRIFTLESS_SOPS:-}" ]]; then
  echo "sops from DRIFTLESS_SOPS: ${DRIFTLESS_SOPS}"
elif [[ -x "${sops_dir}/sops" ]]; then
  echo "sops ${sops_version} already in ${sops_dir}"
else
  start=$SECONDS
  go_install "${sops_dir}" "github.com/getsops/sops/v3/cmd/sops@${sops_version}"
  echo "installed sops ${sops_version} in ${sops_dir} after $((SECONDS - start))s"
fi

if [[ -n "${DRIFTLESS_AGE:-}" ]]; then
  echo "age from DRIFTLESS_AGE: ${DRIFTLESS_AGE}"
elif [[ -x "${age_dir}/age" && -x "${age_dir}/age-keygen" ]]; then
  echo "age ${age_version} already in ${age_dir}"
else
  start=$SECONDS
  go_install "${age_dir}" "filippo.io/age/cmd/age@${age_version}" \
    "filippo.io/age/cmd/age-keygen@${age_version}"
  echo "installed age ${age_version} in ${age_dir} after $((SECONDS - start))s"
fi
