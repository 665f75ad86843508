#!/usr/bin/env bash
# Installs what the driftless-source tests need: git (all transports, including
# `git daemon` and `git http-backend`), an OpenSSH server and client for the SSH
# transport tests, gpg/gpgv for OpenPGP signature checks, socat/openssl for
# the HTTPS tests. Idempotent.
set -euo pipefail

need=()
# Debian's git package ships git-daemon and git-http-backend.
command -v git >/dev/null 2>&1 || need+=(git)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v gpg >/dev/null 2>&1 || need+=(gnupg)
command -v gpgv >/dev/null 2>&1 || need+=(gpgv)
# socat terminates TLS in front of the test HTTP server (custom CA bundle tests).
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v openssl >/dev/null 2>&1 || need+=(openssl)

if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # Duplicates (openssh-client twice) are harmless to apt.
    apt-get install -y --no-install-recommends "${need[@]}"
fi

# sshd refuses to start without its privilege-separation directory; /run is
# cleared on boot, so create it every time.
mkdir -p /run/sshd
chmod 0755 /run/sshd
