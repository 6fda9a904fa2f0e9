#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole chain on this machine: Mosquitto with TLS and the
# generated ACL, HQ on SQLite with the demo chain, a collector, the console, and in this terminal
# the simulated till S001/T01 linked to them (keyboard for keypad, reader and scanner; the pole
# display and LCD drawn on screen; receipts as text and PNG in var/chain/till/receipts). It prints
# the console's address and login; type `help` at the till; Ctrl-C stops everything.
# The till alone, without HQ: .venv/bin/posterm run --simulate
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ESCPOS_CAPABILITIES_PICKLE_DIR="$PWD/var/escpos-cache"
exec .venv/bin/posterm-hq local-chain --state-dir var/chain "$@"
