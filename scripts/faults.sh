#!/usr/bin/env bash
# Runs every fault suite (tests/faults; tests/trust, attacks on HQ by one till, at one size) at a
# stated size and prints one table of what they did: sales run, crashes injected, sales lost,
# events duplicated at HQ, inputs tried, inputs that crashed anything. Size:
# `bash scripts/faults.sh [ci|full|FACTOR]` (default ci, what CI runs; full is ten times that).
# Extra arguments after the size go to pytest.
# The disk-full suite mounts a small file system and needs root; without it, it is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export POSTERM_SUITE_SIZE="${1:-ci}"
shift || true
export ESCPOS_CAPABILITIES_PICKLE_DIR="$PWD/var/escpos-cache"
export POSTERM_FAULTS_DIR="${POSTERM_FAULTS_DIR:-$PWD/var/faults}"
mkdir -p "$POSTERM_FAULTS_DIR"
rm -f "$POSTERM_FAULTS_DIR/counts.jsonl"
started=$(date +%s)
status=0
.venv/bin/python -m pytest tests/faults tests/trust -q "$@" || status=$?
echo "fault suites at size $POSTERM_SUITE_SIZE: $(( $(date +%s) - started )) s, $(date -u +%Y-%m-%d)"
.venv/bin/python bench/faults_table.py
exit "$status"
