#!/usr/bin/env bash
# Installs what every driftless test needs on a fresh Debian machine:
# build tools, the control plane's helpers, and the Rust lint components.
set -euo pipefail

need_apt=()
# ssh, strip and dash also go into the container image (scripts/build-image).
for pair in curl:curl openssl:openssl git:git flock:util-linux setsid:util-linux python3:python3 \
  ssh:openssh-client ssh-keygen:openssh-client strip:binutils dash:dash; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need_apt+=("${pair#*:}")
done
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || need_apt+=(ca-certificates)
# The `kill` program (not the shell builtin): tests kill control-plane components with it.
[[ -x /bin/kill || -x /usr/bin/kill ]] || need_apt+=(procps)
if [[ ${#need_apt[@]} -gt 0 ]]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v kubectl >/dev/null 2>&1 || {
  echo "install-base: kubectl is required on PATH (Debian package 'kubectl')" >&2
  exit 1
}
command -v go >/dev/null 2>&1 || {
  echo "install-base: the Go toolchain is required to build the local control plane" >&2
  exit 1
}
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
