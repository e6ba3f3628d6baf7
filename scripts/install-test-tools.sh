#!/usr/bin/env bash
# Installs the system tools the test suite drives, from Debian's packages, when missing:
# promtool (package prometheus: lints the metrics and the alert rules). Idempotent: does
# nothing (and needs no network) when everything is there. Needs root or sudo.
set -euo pipefail
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing ${missing[*]} (apt-get)" >&2
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
