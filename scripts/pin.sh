#!/usr/bin/env bash
# Rewrites constraints.txt: every package that `pip install -e '.[dev]'` brings in (the dev extra
# pulls hq), at the version installed in .venv now, so run it once the tests pass there. With
# --upgrade it takes the newest each pyproject range allows instead: run the tests again after.
# setup.sh, CI (through setup.sh) and image/wheelhouse.sh install with `-c constraints.txt`.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
if [ "${1:-}" = --upgrade ]; then
  : > "$tmp/seed.txt"
else
  .venv/bin/python -m pip freeze --exclude-editable > "$tmp/seed.txt"
fi
# A fresh venv, so nothing installed into .venv by hand (or left from an older pyproject) is pinned.
"$tmp/venv/bin/python" -m pip install -q -c "$tmp/seed.txt" -e '.[dev]' \
  2> >(grep -v "^WARNING: Location" >&2)
{
  echo "# Exact versions of every package posterm installs, the ones tested (pip install -c)."
  echo "# Regenerate after changing dependencies: bash scripts/pin.sh (the versions in .venv),"
  echo "# or bash scripts/pin.sh --upgrade (the newest pyproject allows), then run the tests."
  "$tmp/venv/bin/python" -m pip freeze --exclude-editable | LC_ALL=C sort -f
} > constraints.txt
echo "pin: constraints.txt has $(grep -vc '^#' constraints.txt) packages" >&2
