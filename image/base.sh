#!/usr/bin/env bash
# Builds the Debian arm64 base root with mmdebstrap under qemu-user, or reuses the cached one built
# from the same inputs. Prints the tarball's path on stdout.
#   base.sh            root without kernel (what CI checks)
#   base.sh --kernel   root with Debian's raspi-firmware and arm64 kernel (what the image boots)
# The cache key covers the suite, mirrors, architecture and package lists, so a changed package
# list rebuilds and nothing else does; delete $POSTERM_IMAGE_CACHE to force a rebuild.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kernel=0
case "${1:-}" in
  --kernel) kernel=1 ;;
  "") ;;
  *) die "usage: base.sh [--kernel]" ;;
esac

packages="$POSTERM_BASE_PACKAGES"
[ "$kernel" -eq 0 ] || packages="$packages $POSTERM_KERNEL_PACKAGES"
packages="$(echo $packages | tr ' ' '\n' | sort -u | paste -sd, -)"

key="$(printf '%s\n' "$POSTERM_SUITE" "$POSTERM_MIRROR" "$POSTERM_SECURITY_MIRROR" "$POSTERM_ARCH" \
  "$packages" "$POSTERM_ROOT_LABEL" "$(sha256sum "$0" | cut -d' ' -f1)" | sha256sum | cut -c1-16)"
kind=rootfs; [ "$kernel" -eq 0 ] || kind=kernel
tarball="$POSTERM_IMAGE_CACHE/base-$POSTERM_SUITE-$POSTERM_ARCH-$kind-$key.tar"

if [ -s "$tarball" ]; then
  log "cached: $tarball"
  echo "$tarball"
  exit 0
fi

mkdir -p "$POSTERM_IMAGE_CACHE"
rm -f "$tarball.part"
start=$(now)
log "building $kind base for $POSTERM_ARCH ($POSTERM_SUITE): $packages"
components="main non-free-firmware"
# raspi-firmware's kernel hook writes root= into cmdline.txt from this file; it must exist before
# the kernel is installed, or the initramfs would be built twice.
hook_raspi="mkdir -p \"\$1/etc/default\" && echo 'ROOTPART=LABEL=$POSTERM_ROOT_LABEL' > \"\$1/etc/default/raspi-firmware\""
mmdebstrap --format=tar --arch="$POSTERM_ARCH" --variant=minbase --components="$components" \
  --include="$packages" \
  --dpkgopt='force-confold' \
  --essential-hook="$hook_raspi" \
  --customize-hook='rm -f "$1/etc/machine-id" "$1/var/lib/dbus/machine-id" && : > "$1/etc/machine-id"' \
  "$POSTERM_SUITE" "$tarball.part" \
  "deb $POSTERM_MIRROR $POSTERM_SUITE $components" \
  "deb $POSTERM_MIRROR $POSTERM_SUITE-updates $components" \
  "deb $POSTERM_SECURITY_MIRROR $POSTERM_SUITE-security $components" >&2
mv "$tarball.part" "$tarball"
log "built $tarball in $(( $(now) - start )) s ($(du -h "$tarball" | cut -f1))"
echo "$tarball"
