#!/usr/bin/env bash
# Installs matrix-nio with its end-to-end encryption extra (vodozemac-based, from PyPI
# wheels), the human's crypto client of the encryption tests (tests/e2e_encryption.rs,
# tests/e2ee_late_keys_and_start.rs), into a Python venv
# (default target/nio-venv, override with NIO_VENV). Idempotent; see install-venv.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec bash "$ROOT/scripts/install-venv.sh" \
    "${NIO_VENV:-$ROOT/target/nio-venv}" \
    "matrix-nio[e2e]==0.26.0" \
    "nio.crypto" \
    "tests/e2e_encryption.rs"
