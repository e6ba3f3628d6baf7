#!/usr/bin/env bash
# Installs the Synapse homeserver used by the tests and scripts/run-local into a
# Python venv (default target/synapse-venv, override with SYNAPSE_VENV).
#
# Idempotent: when the venv's python can already `import synapse`, it does nothing.
# Otherwise it creates the venv with python3 (installing Debian's python3-venv
# first when that fails and we are root) and pip-installs matrix-synapse
# (SYNAPSE_PIP_SPEC, default "matrix-synapse==1.163.*").
# Exits non-zero with a clear message when it cannot install: tests never skip.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${SYNAPSE_VENV:-$ROOT/target/synapse-venv}
SPEC=${SYNAPSE_PIP_SPEC:-matrix-synapse==1.163.*}
PYTHON=${PYTHON:-python3}

say() { echo "install-synapse: $*" >&2; }
die() {
    say "ERROR: $*"
    say "Synapse is required by the integration tests and scripts/run-local."
    exit 1
}
installed() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import synapse' >/dev/null 2>&1; }
version() { (cd / && "$VENV/bin/python" -c 'import synapse; print(synapse.__version__)'); }

if installed; then
    say "Synapse $(version) already installed in $VENV"
    exit 0
fi

mkdir -p "$(dirname "$VENV")"
# One installer at a time (parallel test binaries, a second terminal...).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$VENV.lock"
    flock 9
    if installed; then
        say "Synapse $(version) installed in $VENV by another process"
        exit 0
    fi
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; install Python 3.10 or newer"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$("$PYTHON" --version 2>&1) is too old; Synapse needs Python 3.10 or newer"

make_venv() {
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" && [ -x "$VENV/bin/pip" ]
}

say "creating venv $VENV with $("$PYTHON" --version 2>&1)"
if ! make_venv; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "venv creation failed; installing python3-venv with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >&2 || die "apt-get update failed"
        apt-get install -y -q python3-venv >&2 || die "apt-get install python3-venv failed"
        make_venv || die "cannot create a venv with $PYTHON even after installing python3-venv"
    else
        die "cannot create a venv with $PYTHON (install python3-venv, or run as root so this script can)"
    fi
fi

say "installing $SPEC (this takes a minute)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$SPEC" >&2 \
    || die "pip install $SPEC failed (is PyPI reachable?)"

installed || die "pip finished but 'import synapse' still fails in $VENV"
say "Synapse $(version) installed in $VENV"
