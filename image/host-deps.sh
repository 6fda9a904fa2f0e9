#!/usr/bin/env bash
# Installs what the image build needs on the build host (Debian 12 or newer) where it is missing,
# and makes sure the kernel runs arm64 binaries through qemu-user (binfmt_misc mounted, qemu-aarch64
# registered). Safe to run again; needs root.
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "host-deps: run as root (mmdebstrap, chroot and binfmt need it)" >&2; exit 1; }

need=()
for pair in mmdebstrap:mmdebstrap qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support \
            genimage:genimage mcopy:mtools mkfs.vfat:dosfstools mkfs.ext4:e2fsprogs \
            systemd-analyze:systemd python3:python3 arch-test:arch-test zstd:zstd; do
  cmd="${pair%%:*}"; pkg="${pair#*:}"
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
done
# wheelhouse.sh builds the wheel in a venv of the host's Python.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
# mmdebstrap verifies the arm64 archive with Debian's keyring.
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)

if [ ${#need[@]} -gt 0 ]; then
  echo "host-deps: installing ${need[*]}" >&2
  bash "$(dirname "$0")/../scripts/apt-install.sh" "${need[@]}"
fi

# Containers and CI runners often start without binfmt_misc mounted; without it the first arm64
# maintainer script in the chroot fails with "Exec format error".
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  # No update-binfmts entry (no systemd-binfmt as PID 1): register the packaged description directly.
  conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [ -f "$conf" ] || { echo "host-deps: $conf missing; qemu-user-static is broken" >&2; exit 1; }
  grep -v '^#' "$conf" | head -n1 > /proc/sys/fs/binfmt_misc/register
fi
grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 || {
  echo "host-deps: qemu-aarch64 is registered but disabled in binfmt_misc" >&2; exit 1; }
echo "host-deps: ready (qemu-aarch64 enabled in binfmt_misc)" >&2
