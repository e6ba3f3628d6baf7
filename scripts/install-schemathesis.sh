#!/usr/bin/env bash
# Installs schemathesis, which tests/openapi.rs drives against the bridge API's OpenAPI
# document, into a Python venv (default target/schemathesis-venv, override with
# SCHEMATHESIS_VENV). Idempotent; see install-venv.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec bash "$ROOT/scripts/install-venv.sh" \
    "${SCHEMATHESIS_VENV:-$ROOT/target/schemathesis-venv}" \
    "schemathesis==4.32.5" \
    schemathesis \
    "tests/openapi.rs"
