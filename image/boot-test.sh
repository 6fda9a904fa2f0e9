#!/usr/bin/env bash
# Boots the built image for real in qemu-system-aarch64 (-M virt, with the Debian arm64 kernel and
# initrd that build.sh left beside it) with a provisioning file on its boot partition, and checks
# what the box did (vm-guest.sh's findings): provisioned itself (config, credentials, modes, CSR,
# file removed), mounted the root slot A, /var and the first FAT partition, made the posterm user,
# started posterm.service, and that RAUC knows it booted slot A (image/filesystem/etc/rauc/
# system.conf, ab-boot). Takes a copy of the image; the image itself is not changed. Prints PASS or
# FAIL as its last line. Needs root for nothing but installing qemu-system-arm when missing.
# The A/B switch and fall-back: ab-boot-test.sh.
#   image/boot-test.sh [IMAGE]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out="$POSTERM_BUILD/out"
img="${1:-$out/posterm-arm64.img}"
[ -f "$img" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ] || die "run image/build.sh first"
boot_test_tools

work="$POSTERM_BUILD/boot-test"
rm -rf "$work" && mkdir -p "$work"
cp --sparse=always "$img" "$work/disk.img"
geometry="$(part_geometry "$work/disk.img" 1)"
fat="$work/disk.img@@${geometry%% *}"
write_provisioning "$work"
mcopy -i "$fat" "$work/posterm-provision.toml" ::posterm-provision.toml
mcopy -i "$fat" "$IMAGE_DIR/vm-guest.sh" ::vm-guest.sh

log "booting (serial console in $work/serial.log)"
seconds="$(run_qemu "$work/serial.log" 900 "$out/vmlinuz" "$out/initrd.img" \
  "root=PARTUUID=$POSTERM_DISK_SIGNATURE-05 rootflags=noatime,commit=60 rauc.slot=A rw $VM_CMDLINE systemd.run=\"/bin/bash /boot/firmware/vm-guest.sh start visit 1\" systemd.run_success_action=none" \
  "$work/disk.img")"
log "powered off after $seconds s"

findings="$work/boot-1.out"
mtype -i "$fat" ::boot-1.out > "$findings" 2>/dev/null || die "the box left no findings; see $work/serial.log"
sed 's/^/    /' "$findings" >&2
expect "$findings" '^provision: success 0$'
expect "$findings" '^provision-file: removed$'
expect "$findings" '^csr: left for the technician$'
expect "$findings" '^config: posterm:posterm 640$'
expect "$findings" '^key: posterm:posterm 600$'
expect "$findings" '^terminal: T42$'
expect "$findings" 'mounts: / POSTERM-ROOT /var POSTERM-DATA /boot/firmware POSTERMBOOT'
expect "$findings" '^user: .*\(input\)'
expect "$findings" '^rauc: booted A, primary A$'
expect "$findings" '^ab-confirm: ab-boot: normal boot of A$'
expect "$findings" '^posterm: started [1-9]'
# A box provisioned offline has no rules (they come in HQ's signed bundle) and the emulator no
# broker: posterm is up, READY, and says it waits for HQ's rules (docs/field.md, "READY").
expect "$findings" '^posterm: started [1-9].* 0 restarts, active$'
expect "$findings" "^posterm-status: waiting for HQ's rules"
expect "$findings" '^inputs: keypad$'
expect "$findings" '^failed units: $'
if [ "$failures" -eq 0 ]; then echo "image boot-test: PASS"; else echo "image boot-test: FAIL ($failures)"; exit 1; fi
