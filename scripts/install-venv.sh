#!/usr/bin/env bash
# Installs a Python package into a venv of its own, for the tests and scripts that use it:
#   scripts/install-venv.sh VENV PIP_SPEC IMPORT_NAME [WHAT_NEEDS_IT]
# Idempotent: when the venv's python can already `import IMPORT_NAME`, it does nothing.
# Otherwise it creates the venv with python3 (installing Debian's python3-venv first when
# that fails and we are root) and pip-installs PIP_SPEC. One installer per venv at a time.
# Exits non-zero with a clear message when it cannot install: tests never skip.
set -euo pipefail

VENV=$1
SPEC=$2
MODULE=$3
NEEDED_BY=${4:-the tests}
PYTHON=${PYTHON:-python3}
NAME=$(basename "$VENV")

say() { echo "install-venv ($NAME): $*" >&2; }
die() {
    say "ERROR: $*"
    say "$SPEC is required by $NEEDED_BY."
    exit 1
}
installed() { [ -x "$VENV/bin/python" ] && (cd / && "$VENV/bin/python" -c "import $MODULE") >/dev/null 2>&1; }
version() { (cd / && "$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('${SPEC%%[][=<>~ ]*}'))"); }

if installed; then
    say "$(version) already installed in $VENV"
    exit 0
fi

mkdir -p "$(dirname "$VENV")"
# One installer at a time (parallel test binaries, a second terminal...).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$VENV.lock"
    flock 9
    if installed; then
        say "$(version) installed in $VENV by another process"
        exit 0
    fi
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found; install Python 3.10 or newer"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$("$PYTHON" --version 2>&1) is too old; Python 3.10 or newer is needed"

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
# On a terminal pip shows what it downloads and installs; elsewhere (tests, CI) it is quiet.
if [ -t 2 ]; then verbosity=--progress-bar=on; else verbosity=--quiet; fi
"$VENV/bin/python" -m pip install "$verbosity" --disable-pip-version-check "$SPEC" >&2 \
    || die "pip install $SPEC failed (is PyPI reachable?)"

installed || die "pip finished but 'import $MODULE' still fails in $VENV"
say "$(version) installed in $VENV"
