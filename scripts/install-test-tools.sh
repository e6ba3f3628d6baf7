#!/usr/bin/env bash
# Installs the system tools the test suite drives, from Debian's packages, when missing:
# promtool (package prometheus: lints the metrics and the alert rules) and Chromium (the
# operator console's browser test drives it headless through playwright-core). Idempotent:
# nothing happens, and no network is needed, when both are there. Needs root or sudo.
set -euo pipefail
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-test-tools: installing ${missing[*]} (apt-get; a minute or two)" >&2
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
