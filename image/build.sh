#!/usr/bin/env bash
# One command from a checkout to a flashable Raspberry Pi (arm64) image:
#   sudo image/build.sh          -> build/image/out/posterm-arm64.img and .img.zst
#   POSTERM_BUNDLE_SIGNER=... POSTERM_BUNDLE_CA=... sudo image/build.sh   also posterm-os.raucb
# Installs its host tools (host-deps.sh), builds the wheelhouse, reuses or builds the cached base
# root with the kernel (the ~30-minute step, see base.sh), adds posterm (rootfs.sh) and lays out
# the partitions (genimage.sh). Set POSTERM_BUILD to build elsewhere than build/image.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start=$(now)
bash "$IMAGE_DIR/host-deps.sh"
wheelhouse="$(bash "$IMAGE_DIR/wheelhouse.sh")"
base="$(bash "$IMAGE_DIR/base.sh" --kernel)"
root="$POSTERM_BUILD/root"
bash "$IMAGE_DIR/rootfs.sh" "$base" "$wheelhouse" "$root"

# raspi-firmware wrote cmdline.txt from /etc/default/raspi-firmware; check it names our root.
cmdline="$root/boot/firmware/cmdline.txt"
[ -f "$cmdline" ] || die "$cmdline is missing: the raspi-firmware kernel hook did not run"
grep -q "root=LABEL=$POSTERM_ROOT_LABEL" "$cmdline" || die "$cmdline does not boot LABEL=$POSTERM_ROOT_LABEL: $(cat "$cmdline")"
ls "$root"/boot/firmware/bcm27*-rpi-*.dtb >/dev/null 2>&1 || die "no Raspberry Pi device trees in /boot/firmware"

# The tryboot module (chroot-script.sh, DKMS) must be built for the kernel the image boots, or
# every OS update would be tried never (docs/field.md, section 6).
for modules in "$root"/lib/modules/*/; do
  find "$modules" -name 'posterm_tryboot.ko*' | grep -q . || die "no posterm_tryboot module for $(basename "$modules")"
done
grep -qx posterm_tryboot "$root/etc/modules-load.d/posterm-tryboot.conf" || die "posterm_tryboot is not loaded at boot"

out="$POSTERM_BUILD/out"
bash "$IMAGE_DIR/genimage.sh" "$root" "$out"
# Kept beside the image for boot-test.sh (qemu -M virt boots Debian's kernel directly).
kernel="$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n1)"
cp "$kernel" "$out/vmlinuz"
cp "$root/boot/initrd.img-${kernel##*/vmlinuz-}" "$out/initrd.img"
rm -rf "$root"
img="$out/posterm-arm64.img"
# The same slots as an OS update bundle for boxes already in the field, when a signer is given
# (`posterm-hq ca bundle-signer --ca CA -o SIGNER`): POSTERM_BUNDLE_SIGNER=SIGNER
# POSTERM_BUNDLE_CA=CA (the CA directory, for the intermediate and the check).
if [ -n "${POSTERM_BUNDLE_SIGNER:-}" ]; then
  bash "$IMAGE_DIR/os-bundle.sh" "$out/slot-boot.vfat" "$out/slot-root.ext4" \
    "$(cat "$wheelhouse/version")-$(date -u +%Y%m%d%H%M)" "$POSTERM_BUNDLE_SIGNER" \
    "${POSTERM_BUNDLE_CA:?POSTERM_BUNDLE_CA names the CA directory}" "$out/posterm-os.raucb"
fi
rm -f "$out/slot-boot.vfat" "$out/slot-root.ext4"
# The partitions are mostly empty: the compressed copy is what goes to technicians.
zstd -q -T0 -6 -f "$img" -o "$img.zst"
log "done in $(( $(now) - start )) s: $img ($(du -h --apparent-size "$img" | cut -f1) apparent, $(du -h "$img" | cut -f1) on disk), $img.zst ($(du -h "$img.zst" | cut -f1))"
