#!/usr/bin/env bash
# Sets posterm up on a fresh Debian/Ubuntu machine: the system packages it needs where they are
# missing (Mosquitto and PostgreSQL for the tests, a CJK font for receipts and the LCD), a virtual
# environment in .venv and the package in it. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
need=()
have mosquitto || need+=(mosquitto)
have mosquitto_pub || need+=(mosquitto-clients)
have openssl || need+=(openssl)
have initdb || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
have fc-list || need+=(fontconfig)
ls /usr/share/fonts/truetype/wqy/wqy-microhei.ttc >/dev/null 2>&1 || need+=(fonts-wqy-microhei)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
have systemd-analyze || need+=(systemd)
have mkfs.ext4 || need+=(e2fsprogs)  # the disk-full fault suite makes a small file system
# The OS update tests build and verify a RAUC bundle from small FAT and ext4 slot images.
have rauc || need+=(rauc)
have mksquashfs || need+=(squashfs-tools)
have mkfs.vfat || need+=(dosfstools)
have mcopy || need+=(mtools)
# `rauc install` runs against a RAUC service on a private D-Bus; where the kernel has no vfat (a
# container's), the boot slot is mounted through FUSE (tests/field/rauc_box.py).
have dbus-daemon || need+=(dbus-daemon)
have fusefat || need+=(fusefat)
# The A/B boot test's stand-in for the Pi firmware sets the tryboot flag in a device tree
# (image/pi-firmware.sh; tests/field/test_field_pi_firmware.py).
have fdtput || need+=(device-tree-compiler)
# The console's browser tests drive Debian's Chromium (Playwright's own download is unreachable).
[ -x /usr/bin/chromium ] || need+=(chromium)
# Its zh-CN locale: without it Chromium's own language is en-US whatever the tests ask, and a date
# field shows mm/dd/yyyy to a zh-CN user (tests/support/browser.py says why).
[ -f /usr/lib/chromium/locales/zh-CN.pak ] || need+=(chromium-l10n)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  bash scripts/apt-install.sh "${need[@]}"
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "setup: posterm needs Python 3.11 or newer; this python3 is $(python3 -V)" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'  # dev pulls the hq extra
mkdir -p var/escpos-cache
