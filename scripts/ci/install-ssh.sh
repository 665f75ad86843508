#!/usr/bin/env bash
# Installs what the host target's tests and scripts/bench-hosts need: Debian's
# OpenSSH server (the tests start real sshd processes on loopback ports), the
# client and rsync (the benchmark's reference). Idempotent: does nothing when
# all three are present.
set -euo pipefail

need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v rsync >/dev/null 2>&1 || need+=(rsync)

if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${need[@]}"
fi
