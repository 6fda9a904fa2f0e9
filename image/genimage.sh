#!/usr/bin/env bash
# Lays the root out as a flashable SD card image with genimage, A/B (docs/field.md):
#   1  FAT  POSTERMBOOT  /boot/firmware: autoboot.txt (which slot the firmware starts), the
#                        technician's posterm-provision.toml
#   2  FAT  boot slot A  firmware, kernel, device trees, cmdline.txt -> root A (rauc.slot=A)
#   3  FAT  boot slot B  empty until the first OS update
#   4  extended, holding:
#   5  ext4 root slot A  PARTUUID=<signature>-05
#   6  ext4 root slot B  PARTUUID=<signature>-06, empty until the first OS update
#   7  ext4 POSTERM-DATA /var
#   genimage.sh ROOT_DIR OUTPUT_DIR     (writes OUTPUT_DIR/posterm-arm64.img, and the slot images
#                                        slot-boot.vfat and slot-root.ext4 that os-bundle.sh packs)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || die "usage: genimage.sh ROOT_DIR OUTPUT_DIR"
root="$1" out="$2"
work="$POSTERM_BUILD/genimage"
rm -rf "$work" && mkdir -p "$work/tmp" "$out"

# What raspi-firmware installed in /boot/firmware is slot A's boot partition, pointed at root A;
# /boot/firmware itself becomes the small first partition the firmware reads autoboot.txt from.
if [ -d "$root/boot/firmware" ] && [ ! -d "$root/boot/slot" ]; then
  mv "$root/boot/firmware" "$root/boot/slot"
  mkdir -p "$root/boot/firmware"
  [ ! -f "$root/boot/slot/posterm-provision.example.toml" ] || \
    mv "$root/boot/slot/posterm-provision.example.toml" "$root/boot/firmware/"
fi
[ ! -f "$root/boot/slot/cmdline.txt" ] || \
  bash "$IMAGE_DIR/slot-cmdline.sh" "$root/boot/slot/cmdline.txt" A "$POSTERM_DISK_SIGNATURE"
cat > "$root/boot/firmware/autoboot.txt" <<TXT
# posterm A/B boot, written by ab-boot: the section all names the committed
# slot, the section tryboot the slot tried by one reboot into tryboot.
[all]
tryboot_a_b=1
boot_partition=2
[tryboot]
boot_partition=3
TXT

cat > "$work/genimage.cfg" <<CFG
image config.vfat {
  vfat { label = "$POSTERM_BOOT_LABEL" }
  size = $POSTERM_CONFIG_SIZE
  mountpoint = "/boot/firmware"
}
image slot-boot.vfat {
  vfat { label = "$POSTERM_SLOT_LABEL" }
  size = $POSTERM_BOOT_SIZE
  mountpoint = "/boot/slot"
}
image data.ext4 {
  ext4 { label = "$POSTERM_DATA_LABEL" use-mke2fs = true }
  size = $POSTERM_DATA_SIZE
  mountpoint = "/var"
}
image slot-root.ext4 {
  ext4 { label = "$POSTERM_ROOT_LABEL" use-mke2fs = true }
  size = $POSTERM_ROOT_SIZE
}
image posterm-arm64.img {
  # 4 MiB alignment: SD cards erase in blocks of that order; misaligned partitions write slower.
  hdimage {
    partition-table-type = "mbr"
    align = 4M
    disk-signature = 0x$POSTERM_DISK_SIGNATURE
    extended-partition = 4
  }
  partition config { partition-type = 0xC bootable = true image = "config.vfat" }
  partition boot-a { partition-type = 0xC image = "slot-boot.vfat" }
  partition boot-b { partition-type = 0xC size = $POSTERM_BOOT_SIZE }
  partition root-a { partition-type = 0x83 image = "slot-root.ext4" }
  partition root-b { partition-type = 0x83 size = $POSTERM_ROOT_SIZE }
  partition data { partition-type = 0x83 image = "data.ext4" }
}
CFG
start=$(now)
genimage --rootpath "$root" --tmppath "$work/tmp" --inputpath "$out" --outputpath "$out" \
  --config "$work/genimage.cfg" >&2
rm -f "$out/config.vfat" "$out/data.ext4"
rm -rf "$work/tmp"
log "image $out/posterm-arm64.img in $(( $(now) - start )) s (slot images kept for os-bundle.sh)"
