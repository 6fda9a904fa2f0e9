#!/usr/bin/env bash
# Builds the offline wheelhouse for the arm64 image: the posterm wheel from this checkout and
# aarch64/py3.11 wheels of its dependencies from PyPI, at the versions constraints.txt pins (the
# tested ones). evdev is left out: the image uses Debian's python3-evdev through the venv's system
# site packages (PyPI has no aarch64 wheel of it). No extra: HQ's packages never reach a terminal.
# Prints the wheelhouse directory on stdout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out="$POSTERM_BUILD/wheelhouse"
tools="$POSTERM_BUILD/tools-venv"
rm -rf "$out" && mkdir -p "$out"
[ -x "$tools/bin/python" ] || python3 -m venv "$tools"
"$tools/bin/python" -m pip install --quiet --upgrade pip

"$tools/bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$out" "$REPO_DIR"
wheel="$(ls "$out"/posterm-*.whl)"
# The version the image installs (posterm==<version>), read by rootfs.sh and ci-check.sh.
basename "$wheel" | sed -E 's/^posterm-([^-]+)-.*/\1/' > "$out/version"
# The runtime requirements as the wheel declares them, without extras and without evdev.
"$tools/bin/python" - "$wheel" > "$out/requirements.txt" <<'PY'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as whl:
    meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    for line in whl.read(meta).decode().splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            req = line.split(":", 1)[1].strip()
            if not req.lower().startswith("evdev"):
                print(req)
PY
"$tools/bin/python" -m pip download --quiet --dest "$out" --only-binary=:all: \
  --implementation cp --python-version 3.11 --abi cp311 --abi abi3 --abi none \
  --platform manylinux_2_36_aarch64 --platform manylinux_2_28_aarch64 \
  --platform manylinux2014_aarch64 --platform linux_aarch64 --platform any \
  -c "$REPO_DIR/constraints.txt" -r "$out/requirements.txt" 2> >(grep -v "^WARNING: Location" >&2)
log "wheelhouse: posterm $(cat "$out/version"), $(find "$out" -name "*.whl" | wc -l) wheels, $(du -sh "$out" | cut -f1)"
echo "$out"
