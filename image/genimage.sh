#!/usr/bin/env bash
# Lays the root out as a flashable SD card image with genimage: MBR, a vfat boot partition built
# with mtools from /boot/firmware, the ext4 root, and the ext4 data partition made from /var.
#   genimage.sh ROOT_DIR OUTPUT_DIR     (writes OUTPUT_DIR/posterm-arm64.img)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 2 ] || die "usage: genimage.sh ROOT_DIR OUTPUT_DIR"
root="$1" out="$2"
work="$POSTERM_BUILD/genimage"
rm -rf "$work" && mkdir -p "$work/tmp" "$out"
cat > "$work/genimage.cfg" <<CFG
image boot.vfat {
  vfat { label = "$POSTERM_BOOT_LABEL" }
  size = $POSTERM_BOOT_SIZE
  mountpoint = "/boot/firmware"
}
image data.ext4 {
  ext4 { label = "$POSTERM_DATA_LABEL" use-mke2fs = true }
  size = $POSTERM_DATA_SIZE
  mountpoint = "/var"
}
image root.ext4 {
  ext4 { label = "$POSTERM_ROOT_LABEL" use-mke2fs = true }
  size = $POSTERM_ROOT_SIZE
}
image posterm-arm64.img {
  # 4 MiB alignment: SD cards erase in blocks of that order; misaligned partitions write slower.
  hdimage { partition-table-type = "mbr" align = 4M }
  partition boot { partition-type = 0xC bootable = true image = "boot.vfat" }
  partition root { partition-type = 0x83 image = "root.ext4" }
  partition data { partition-type = 0x83 image = "data.ext4" }
}
CFG
start=$(now)
genimage --rootpath "$root" --tmppath "$work/tmp" --inputpath "$out" --outputpath "$out" \
  --config "$work/genimage.cfg" >&2
rm -f "$out/boot.vfat" "$out/root.ext4" "$out/data.ext4"
rm -rf "$work/tmp"
log "image $out/posterm-arm64.img in $(( $(now) - start )) s"
