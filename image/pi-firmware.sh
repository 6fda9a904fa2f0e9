#!/usr/bin/env bash
# The Raspberry Pi firmware's part of an A/B boot, played on the host for ab-boot-test.sh (qemu's
# -M virt has no Pi firmware): which boot partition it starts and what it hands the kernel.
#
#   pi-firmware.sh flag SERIAL_LOG
#       How the boot on that console ended, as the firmware learns it: "tryboot" (the kernel
#       restarted with a command holding "tryboot", `reboot "0 tryboot"`, and the posterm-tryboot
#       module's notifier said it passed that on), "reboot" (a restart without it, or with it but
#       without the module's line: a Pi's firmware would not have been told), "poweroff", or
#       "hang" (neither: the board's watchdog would reset it, which the firmware takes as an
#       ordinary boot).
#   pi-firmware.sh boot DISK normal|tryboot OUTDIR [BASE_DTB]
#       What the firmware starts: reads autoboot.txt from partition 1 (FAT), takes [tryboot]'s
#       boot_partition on a tryboot, else [all]'s, and from that FAT partition the kernel=
#       and initramfs of config.txt (tryboot.txt on a tryboot without tryboot_a_b=1) and
#       cmdline.txt, into OUTDIR/vmlinuz, initrd.img and
#       cmdline.txt. With BASE_DTB (qemu's own, dumpdtb), OUTDIR/firmware.dtb is it with
#       /chosen/bootloader/tryboot (1 on a tryboot, else 0) and partition, as the Pi firmware
#       sets them (ab-boot reads the flag from /proc/device-tree). Prints "partition N".
#
# What stands in for the real thing: on a Pi, the tryboot flag reaches the firmware through its
# mailbox (RPI_FIRMWARE_SET_REBOOT_FLAGS), which Debian's kernel (mainline) never sends; the
# posterm-tryboot module (image/tryboot-module/, docs/field.md section 6) sends it from its reboot
# notifier when the restart command holds "tryboot". qemu's virt machine has no such firmware, so
# the module's notifier only logs ("posterm_tryboot: restart with command '0 tryboot': no
# Raspberry Pi firmware ... to tell"); here the flag is read from that line followed by the
# kernel's own for the restart ("reboot: Restarting system with command '0 tryboot'"). Without
# the module's line the restart counts as a plain one, as it would on a Pi.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

fat_file() {  # fat_file DISK PARTITION NAME: a file of a FAT partition, on stdout
  local geometry
  geometry="$(part_geometry "$1" "$2")"
  mcopy -n -i "$1@@${geometry%% *}" "::$3" -
}

# ini_value TEXT SECTION KEY: KEY's value in [SECTION] of an autoboot.txt/config.txt-like text.
ini_value() {
  awk -v section="$2" -v key="$3" '
    { sub(/#.*/, ""); gsub(/\r|^[ \t]+|[ \t]+$/, "") }
    /^\[.*\]$/ { current = substr($0, 2, length($0) - 2); next }
    current == section && index($0, key "=") == 1 { value = substr($0, length(key) + 2) }
    END { print value }' <<<"$1"
}

case "${1:-}" in
  flag)
    [ $# -eq 2 ] || die "usage: pi-firmware.sh flag SERIAL_LOG"
    last="$(grep -aoE "reboot: (Restarting system( with command '[^']*')?|Power down)" "$2" | tail -n1 || true)"
    case "$last" in
      *"with command '"*"tryboot"*)
        command="${last#*with command \'}"; command="${command%\'}"
        if grep -aqF "posterm_tryboot: restart with command '$command': " "$2"; then
          echo tryboot
        else
          log "restart with command '$command' but no posterm_tryboot line: the firmware was not told, a plain restart"
          echo reboot
        fi ;;
      *Restarting*) echo reboot ;;
      *"Power down"*) echo poweroff ;;
      *) echo hang ;;
    esac
    ;;
  boot)
    [ $# -eq 4 ] || [ $# -eq 5 ] || die "usage: pi-firmware.sh boot DISK normal|tryboot OUTDIR [BASE_DTB]"
    disk="$2" mode="$3" outdir="$4" base_dtb="${5:-}"
    case "$mode" in normal) section=all ;; tryboot) section=tryboot ;; *) die "normal or tryboot, not '$mode'" ;; esac
    autoboot="$(fat_file "$disk" 1 autoboot.txt)" || die "no autoboot.txt on partition 1"
    partition="$(ini_value "$autoboot" "$section" boot_partition)"
    [[ "$partition" =~ ^[1-9][0-9]*$ ]] || die "autoboot.txt names no boot_partition for [$section]"
    # On a tryboot the firmware reads tryboot.txt, unless tryboot_a_b=1: then the switch is the
    # partition's, and the slot's own config.txt is read.
    config_file=config.txt
    if [ "$mode" = tryboot ] && [ "$(ini_value "$autoboot" all tryboot_a_b)" != 1 ]; then
      config_file=tryboot.txt
    fi
    config="$(fat_file "$disk" "$partition" "$config_file")" || die "no $config_file on partition $partition"
    kernel="$(sed -n 's/^[ \t]*kernel=\([^ \t#]*\).*/\1/p' <<<"$config" | tail -n1)"
    initramfs="$(sed -n 's/^[ \t]*initramfs[ \t]\{1,\}\([^ \t#]*\).*/\1/p' <<<"$config" | tail -n1)"
    [ -n "$kernel" ] && [ -n "$initramfs" ] || die "config.txt on partition $partition names no kernel= and initramfs"
    mkdir -p "$outdir"
    fat_file "$disk" "$partition" "$kernel" > "$outdir/vmlinuz" || die "no $kernel on partition $partition"
    fat_file "$disk" "$partition" "$initramfs" > "$outdir/initrd.img" || die "no $initramfs on partition $partition"
    fat_file "$disk" "$partition" cmdline.txt | head -n1 | tr -d '\r' > "$outdir/cmdline.txt"
    [ -s "$outdir/cmdline.txt" ] || die "no cmdline.txt on partition $partition"
    if [ -n "$base_dtb" ]; then
      cp "$base_dtb" "$outdir/firmware.dtb"
      fdtput -c -p "$outdir/firmware.dtb" /chosen/bootloader
      fdtput -t u "$outdir/firmware.dtb" /chosen/bootloader tryboot "$([ "$mode" = tryboot ] && echo 1 || echo 0)"
      fdtput -t u "$outdir/firmware.dtb" /chosen/bootloader partition "$partition"
    fi
    echo "partition $partition"
    ;;
  *) die "usage: pi-firmware.sh flag SERIAL_LOG | boot DISK normal|tryboot OUTDIR [BASE_DTB]" ;;
esac
