#!/usr/bin/env bash
# Installs what the web UI's browser tests need: Debian's headless-capable
# Chromium and the matching chromedriver (WebDriver). Idempotent: does nothing
# when both are already on PATH.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)

if [ "${#need[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${need[@]}"
fi
