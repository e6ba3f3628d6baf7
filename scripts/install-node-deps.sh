#!/usr/bin/env bash
# Installs the npm dependencies of the project's Node.js parts, exactly as their
# package-lock.json pins them (`npm ci`, from the npm registry):
#   scripts/install-node-deps.sh            # every directory listed below
#   scripts/install-node-deps.sh DIR...     # only these (relative to the repository)
# Idempotent and quick when nothing changed: a directory whose node_modules was installed
# from the same package-lock.json (a stamp holds its digest) is left alone. The tests that
# need node_modules fail with a message naming this script when it is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The directories with a package.json and a package-lock.json.
NODE_DIRS=(
    clients/typescript
    tests/browser
)

STAMP=.installed-from-lock

say() { echo "install-node-deps: $*" >&2; }
die() {
    say "ERROR: $*"
    exit 1
}

command -v node >/dev/null 2>&1 || die "node not found: install Node.js 20 or newer (Debian: apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm not found (Debian: apt-get install npm)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || die "Node.js $(node --version) is too old; 20 or newer is needed"

# The lockfile's digest and the Node.js major version: either changing means reinstalling.
want_stamp() { echo "$(sha256sum "$1/package-lock.json" | cut -d' ' -f1) node$major"; }

install_dir() {
    local dir=$ROOT/$1
    [ -f "$dir/package-lock.json" ] || die "$1/package-lock.json is missing"
    local want
    want=$(want_stamp "$dir")
    if [ "$(cat "$dir/node_modules/$STAMP" 2>/dev/null)" = "$want" ]; then
        say "$1: up to date"
        return
    fi
    say "$1: npm ci"
    (cd "$dir" && npm ci --no-audit --no-fund >&2) || die "$1: npm ci failed"
    echo "$want" >"$dir/node_modules/$STAMP"
}

dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=("${NODE_DIRS[@]}")
mkdir -p "$ROOT/target"
# One installer at a time (parallel test runs, a second terminal...).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$ROOT/target/.install-node-deps.lock"
    flock 9
fi
for d in "${dirs[@]}"; do
    install_dir "${d%/}"
done
