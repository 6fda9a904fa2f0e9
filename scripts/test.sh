#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite with the linter. Extra arguments go to
# pytest, e.g. `bash scripts/test.sh tests/loyalty -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ESCPOS_CAPABILITIES_PICKLE_DIR="$PWD/var/escpos-cache"
.venv/bin/ruff check .
.venv/bin/lint-imports  # the layers' rules in pyproject.toml (docs/layout.md)
.venv/bin/python -m pytest "$@"
