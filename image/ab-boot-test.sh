#!/usr/bin/env bash
# The A/B operating-system update under qemu-system-aarch64 (-M virt): four boots of a copy of the
# built image, with the host playing the Raspberry Pi firmware's part (pi-firmware.sh: which
# boot partition autoboot.txt and the tryboot flag start, the kernel, initramfs and cmdline.txt
# from that partition, the tryboot flag in the device tree), and the box doing the rest with its
# own RAUC, ab-boot and posterm-ab-confirm.service (docs/field.md, section 6):
#   1  normal boot of A: provisions itself, posterm READY; `rauc install` of the signed OS bundle
#      writes slot B and puts it on trial; `ab-boot reboot` restarts with "0 tryboot"
#   2  tryboot of B: posterm READY, the boot check commits B (autoboot.txt [all] -> B); the bundle
#      is installed again, into A, which goes on trial; reboot "0 tryboot"
#      (the host then breaks A's new root: a posterm drop-in that never sends READY, and its boot
#      check waits POSTERM_AB_TRIAL_WAIT s, 120, instead of 300)
#   3  tryboot of A: posterm never READY, so the boot check marks A bad and reboots plainly
#   4  normal boot: the firmware starts B, still the committed slot; A is bad
# Each boot is checked on the box's findings (vm-guest.sh, left on the first FAT), on its serial
# console (the journal is forwarded to it) and on autoboot.txt as the host reads it afterwards.
# Prints each boot's time and the time posterm took to be READY, then PASS or FAIL. Opt-in: needs
# build.sh run with a bundle signer (POSTERM_BUNDLE_SIGNER, POSTERM_BUNDLE_CA) and root (qemu's
# install, debugfs on the copy).
#   image/ab-boot-test.sh CA_DIR [IMAGE [BUNDLE]]
# CA_DIR is HQ's CA directory (`posterm-hq ca init`) whose bundle signer signed BUNDLE: the box's
# keyring is its chain and current CRLs, as an OS update over MQTT writes it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || die "usage: ab-boot-test.sh CA_DIR [IMAGE [BUNDLE]]"
ca="$1"
out="$POSTERM_BUILD/out"
img="${2:-$out/posterm-arm64.img}"
bundle="${3:-$out/posterm-os.raucb}"
[ -f "$img" ] || die "$img is missing: run image/build.sh first"
[ -f "$bundle" ] || die "$bundle is missing: run image/build.sh with POSTERM_BUNDLE_SIGNER and POSTERM_BUNDLE_CA"
[ -f "$ca/chain.pem" ] && [ -f "$ca/root.crl" ] || die "$ca is not a CA directory (posterm-hq ca init)"
hq="$(command -v posterm-hq || echo "$REPO_DIR/.venv/bin/posterm-hq")"
[ -x "$hq" ] || die "posterm-hq is missing (scripts/setup.sh)"
boot_test_tools
LIMIT="${POSTERM_AB_BOOT_LIMIT:-2400}"  # seconds a boot may take, the install or the wait included
# The posterm-tryboot module in each slot: built by DKMS for the slot's kernel, loaded at boot,
# and its reboot notifier run at `reboot "0 tryboot"` (its line on the console before the kernel's;
# pi-firmware.sh starts [tryboot] only after it).
TRYBOOT_MODULE='^tryboot-module: loaded; posterm_tryboot: loaded: no Raspberry Pi firmware'
TRYBOOT_DKMS='^dkms: .*posterm-tryboot/[^,]*, [^,]*, aarch64: installed'
TRYBOOT_NOTIFIED="posterm_tryboot: restart with command '0 tryboot': no Raspberry Pi firmware"
TRIAL_WAIT="${POSTERM_AB_TRIAL_WAIT:-120}"  # the broken slot's boot check's wait for READY (ab-boot: 300)

work="$POSTERM_BUILD/ab-boot-test"
rm -rf "$work" && mkdir -p "$work/bundle-disk"
cp --sparse=always "$img" "$work/disk.img"
disk="$work/disk.img"
geometry="$(part_geometry "$disk" 1)"
fat="$disk@@${geometry%% *}"
write_provisioning "$work"
mcopy -i "$fat" "$work/posterm-provision.toml" ::posterm-provision.toml
mcopy -i "$fat" "$IMAGE_DIR/vm-guest.sh" ::vm-guest.sh

# A second disk (labelled ABBUNDLE) with the bundle and the keyring: HQ's chain, the issuing CA's
# CRL and the root's.
"$hq" ca crl --ca "$ca" -o "$work/crl.pem" >&2
cat "$ca/chain.pem" "$work/crl.pem" "$ca/root.crl" > "$work/bundle-disk/keyring.pem"
ln "$bundle" "$work/bundle-disk/posterm-os.raucb" 2>/dev/null || cp "$bundle" "$work/bundle-disk/posterm-os.raucb"
truncate -s "$(( $(stat -c %s "$bundle") / 1048576 + 64 ))M" "$work/bundle.ext4"
mke2fs -q -F -t ext4 -L ABBUNDLE -d "$work/bundle-disk" "$work/bundle.ext4"
rm -rf "$work/bundle-disk"

# qemu's own device tree for this machine, which the firmware stand-in adds /chosen/bootloader to.
qemu-system-aarch64 "${QEMU_MACHINE[@]}" -machine dumpdtb="$work/virt.dtb" -nographic -nic none >/dev/null 2>&1
[ -s "$work/virt.dtb" ] || die "qemu did not dump its device tree"

autoboot() { mtype -i "$fat" ::autoboot.txt | grep -E '^\[|boot_partition' | tr -d '\r' | tr '\n' ' '; }

# Slot A's new root after the second install: posterm hangs before READY=1 (a release that never
# comes up), written with debugfs into the copy's partition 5.
break_slot_a() {
  local offset dropin="$work/ab-boot-test-broken.conf" dir=/etc/systemd/system/posterm.service.d
  geometry="$(part_geometry "$disk" 5)"
  offset="${geometry%% *}"
  cat > "$dropin" <<'CONF'
# ab-boot-test.sh: this slot's posterm never sends READY=1.
[Service]
ExecStart=
ExecStart=/bin/sh -c 'echo "ab-boot-test: this slot never gets READY"; exec sleep infinity'
CONF
  debugfs -w -R "mkdir $dir" "$disk?offset=$offset" >/dev/null 2>&1 || true
  debugfs -w -R "write $dropin $dir/${dropin##*/}" "$disk?offset=$offset" >/dev/null 2>&1
  # Its boot check waits POSTERM_AB_TRIAL_WAIT seconds for READY instead of ab-boot's 300, to
  # keep the run short under emulation (the decision is the same, only later).
  printf '[Service]\nEnvironment=POSTERM_AB_WAIT=%s\n' "$TRIAL_WAIT" > "$work/ab-boot-test-wait.conf"
  debugfs -w -R "mkdir ${dir%/*}/posterm-ab-confirm.service.d" "$disk?offset=$offset" >/dev/null 2>&1 || true
  debugfs -w -R "write $work/ab-boot-test-wait.conf ${dir%/*}/posterm-ab-confirm.service.d/ab-boot-test-wait.conf" \
    "$disk?offset=$offset" >/dev/null 2>&1
  debugfs -R "cat $dir/${dropin##*/}" "$disk?offset=$offset" 2>/dev/null | grep -q 'never gets READY' \
    || die "could not write the drop-in into slot A's root (partition 5)"
  log "slot A's root (partition 5): posterm.service.d/${dropin##*/} written (never READY)"
}

# The four boots: the step the box runs (vm-guest.sh), then what the firmware must start and how
# the boot must end.
steps=(install install visit check)
want_start=("partition 2 normal" "partition 3 tryboot" "partition 2 tryboot" "partition 3 normal")
want_end=(tryboot tryboot reboot poweroff)
flag=normal  # the first power-on
summary=()
for n in 1 2 3 4; do
  i=$((n - 1))
  [ "$n" -ne 3 ] || break_slot_a
  firmware="$work/firmware-$n"
  started="$(bash "$IMAGE_DIR/pi-firmware.sh" boot "$disk" "$flag" "$firmware" "$work/virt.dtb") $flag"
  host="$work/boot-$n.host"
  echo "firmware: $started" > "$host"
  log "boot $n: the firmware starts $started (autoboot.txt: $(autoboot)); serial console in $work/serial-$n.log"
  append="$(cat "$firmware/cmdline.txt") $VM_CMDLINE systemd.journald.forward_to_console=1"
  append+=" systemd.run=\"/bin/bash /boot/firmware/vm-guest.sh start ${steps[$i]} $n\" systemd.run_success_action=none"
  seconds="$(run_qemu "$work/serial-$n.log" "$LIMIT" "$firmware/vmlinuz" "$firmware/initrd.img" "$append" \
    "$disk" -dtb "$firmware/firmware.dtb" -drive if=virtio,format=raw,readonly=on,file="$work/bundle.ext4")"
  flag="$(bash "$IMAGE_DIR/pi-firmware.sh" flag "$work/serial-$n.log")"
  ready="$(grep -a -m1 'Started posterm.service' "$work/serial-$n.log" | awk '{print $1}' || true)"
  {
    echo "end: $flag after $seconds s"
    echo "autoboot-after: $(autoboot)"
    echo "console-ready: ${ready:-never} s"
  } >> "$host"
  findings="$work/boot-$n.out"
  mtype -i "$fat" "::boot-$n.out" > "$findings" 2>/dev/null || rm -f "$findings"
  log "boot $n ended ($flag) after $seconds s; posterm.service started (READY) on the console at ${ready:-never} s"
  sed 's/^/    /' "$host" >&2
  [ ! -f "$findings" ] || sed 's/^/    /' "$findings" >&2
  expect "$host" "^firmware: ${want_start[$i]}$"
  expect "$host" "^end: ${want_end[$i]} "
  guest_ready="$( [ -f "$findings" ] && sed -n 's/^ready: \([0-9]*\) us$/\1/p' "$findings" || true)"
  summary+=("boot $n: ${started}, ${seconds} s to ${flag}, posterm READY on the console at ${ready:-never} s$( [ -z "$guest_ready" ] || [ "$guest_ready" = 0 ] || printf ', %s s after the kernel (box clock)' "$(python3 -c "print(f'{$guest_ready/1e6:.1f}')")")")
  case "$n" in
    1)
      for line in '^provision: success 0$' '^provision-file: removed$' '^config: posterm:posterm 640$' \
                  '^key: posterm:posterm 600$' '^terminal: T42$' \
                  'mounts: / POSTERM-ROOT /var POSTERM-DATA /boot/firmware POSTERMBOOT' '^user: .*\(input\)' \
                  '^root: /dev/vda5$' '^tryboot-flag: 0 0 0 0 $' '^ab-confirm: ab-boot: normal boot of A$' \
                  '^rauc: booted A, primary A$' '^posterm: started [1-9].* active$' '^ready: [1-9]' \
                  "^posterm-status: waiting for HQ's rules" '^inputs: keypad$' \
                  '^install: done in ' \
                  '^after-install: primary B, autoboot \[all\] boot_partition=2 \[tryboot\] boot_partition=3 $' \
                  "$TRYBOOT_MODULE" "$TRYBOOT_DKMS"; do
        expect "$findings" "$line"
      done
      expect "$work/serial-$n.log" "$TRYBOOT_NOTIFIED"
      expect "$host" '^autoboot-after: \[all\] boot_partition=2 \[tryboot\] boot_partition=3 $'
      ;;
    2)
      for line in '^root: /dev/vda6$' '^tryboot-flag: 0 0 0 1 $' \
                  '^ab-confirm: ab-boot: committed B: posterm.service is active \(READY=1\)$' \
                  '^rauc: booted B, primary B$' '^posterm: started [1-9].* active$' \
                  '^autoboot: \[all\] boot_partition=3 \[tryboot\] boot_partition=2 $' \
                  '^rauc-slot: B booted boot-status good' '^install: done in ' \
                  '^after-install: primary A, autoboot \[all\] boot_partition=3 \[tryboot\] boot_partition=2 $' \
                  "$TRYBOOT_MODULE" "$TRYBOOT_DKMS"; do
        expect "$findings" "$line"
      done
      expect "$work/serial-$n.log" "$TRYBOOT_NOTIFIED"
      expect "$work/serial-$n.log" 'ab-boot: committed B'
      expect "$host" '^autoboot-after: \[all\] boot_partition=3 \[tryboot\] boot_partition=2 $'
      ;;
    3)
      # The box never reaches multi-user.target (the boot check holds it, then reboots): no findings.
      if [ -f "$findings" ]; then log "FAILED: boot 3 got as far as its findings"; failures=$((failures + 1)); fi
      expect "$work/serial-$n.log" 'Kernel command line: .*rauc\.slot=A'
      expect "$work/serial-$n.log" 'ab-boot-test: this slot never gets READY'
      expect "$work/serial-$n.log" "ab-boot: fell back from A: posterm.service did not reach READY; rebooting into B"
      expect "$host" '^autoboot-after: \[all\] boot_partition=3 \[tryboot\] boot_partition=2 $'
      ;;
    4)
      for line in '^root: /dev/vda6$' '^tryboot-flag: 0 0 0 0 $' '^ab-confirm: ab-boot: normal boot of B$' \
                  '^rauc: booted B, primary B$' '^posterm: started [1-9].* active$' \
                  '^rauc-slot: A inactive boot-status bad' '^rauc-slot: B booted boot-status good' \
                  '^previous-cmdline: .*rauc\.slot=A' \
                  '^previous-ab-confirm: ab-boot: fell back from A: posterm.service did not reach READY' \
                  '^previous-posterm: [1-9][0-9]* starts that never got READY' \
                  '^failed units: $'; do
        expect "$findings" "$line"
      done
      expect "$host" '^autoboot-after: \[all\] boot_partition=3 \[tryboot\] boot_partition=2 $'
      ;;
  esac
  case "$flag" in poweroff) break ;; tryboot) ;; *) flag=normal ;; esac
done

log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "${summary[@]}"
if [ "$failures" -eq 0 ]; then echo "image ab-boot-test: PASS"; else echo "image ab-boot-test: FAIL ($failures)"; exit 1; fi
