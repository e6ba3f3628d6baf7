#!/usr/bin/env bash
# Installs Debian's Chromium, which the console's browser test (tests/console.rs, through
# tests/browser/) drives headless with playwright-core. Idempotent: nothing happens when
# /usr/bin/chromium is there. Needs root (apt-get), as on the project's machines and CI.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
echo "install-browser: installing Debian's chromium (apt-get; takes a minute or two)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version >&2
