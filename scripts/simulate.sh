#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the terminal in simulation: the real daemon with simulated
# hardware in this terminal (keyboard for keypad, reader and scanner; the pole display and LCD
# drawn on screen; receipts as text and PNG in var/sim/receipts). Type `help` once it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ESCPOS_CAPABILITIES_PICKLE_DIR="$PWD/var/escpos-cache"
exec .venv/bin/posterm run --simulate --state-dir var/sim "$@"
