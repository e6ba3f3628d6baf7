#!/usr/bin/env bash
# Installs the Synapse homeserver used by the tests and scripts/run-local into a
# Python venv (default target/synapse-venv, override with SYNAPSE_VENV; the package spec
# with SYNAPSE_PIP_SPEC, default "matrix-synapse==1.163.*"). Idempotent; see install-venv.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec bash "$ROOT/scripts/install-venv.sh" \
    "${SYNAPSE_VENV:-$ROOT/target/synapse-venv}" \
    "${SYNAPSE_PIP_SPEC:-matrix-synapse==1.163.*}" \
    synapse \
    "the integration tests and scripts/run-local"
