#!/bin/bash
# Points a boot slot's cmdline.txt at its own root slot: root=PARTUUID of partition 5 (slot A) or 6
# (slot B), its mount options (fstab has no root line) and rauc.slot=A|B, which RAUC and ab-boot
# read to know the booted slot; panic=10 makes a kernel that cannot mount its root reboot, and
# the firmware then starts the committed slot.
# Runs at image build (genimage.sh) and on the box as the bundle's install hook (os-bundle.sh), so
# bash and sed only.
#   slot-cmdline.sh CMDLINE_TXT A|B DISK_SIGNATURE
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: slot-cmdline.sh CMDLINE_TXT A|B DISK_SIGNATURE" >&2; exit 2; }
file="$1" slot="$2" signature="$3"
case "$slot" in
  A) part=05 ;;
  B) part=06 ;;
  *) echo "slot-cmdline.sh: slot must be A or B, not '$slot'" >&2; exit 2 ;;
esac
[ -f "$file" ] || { echo "slot-cmdline.sh: $file is missing" >&2; exit 1; }
line="$(head -n1 "$file" | sed -E 's/(^| )(root|rootflags|rauc\.slot|panic)=[^ ]*//g; s/^ +//')"
printf '%s root=PARTUUID=%s-%s rootflags=noatime,commit=60 rauc.slot=%s panic=10\n' \
  "$line" "$signature" "$part" "$slot" > "$file.new"
mv "$file.new" "$file"
