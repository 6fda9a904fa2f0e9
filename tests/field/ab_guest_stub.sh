#!/bin/bash
# qemu-system-aarch64 for tests/field/test_field_pi_firmware.py's dry run of image/ab-boot-test.sh:
# no machine, only what the four boots of a good A/B run leave behind (the findings on the first
# FAT, autoboot.txt as ab-boot rewrites it, the console lines the host reads), each for the slot
# and tryboot flag the host's firmware stand-in chose. With STUB_NO_FALLBACK=1, boot 3 (the broken
# slot A) comes up and powers off instead of falling back.
set -euo pipefail
args=("$@")
for ((i=0; i<${#args[@]}; i++)); do
  case "${args[$i]}" in
    dumpdtb=*) printf '/dts-v1/;\n/ { chosen { }; };\n' | dtc -q -I dts -O dtb -o "${args[$i]#dumpdtb=}"; exit 0 ;;
    -append) append="${args[$((i+1))]}" ;;
    -dtb) dtb="${args[$((i+1))]}" ;;
    file=*) [ -n "${disk:-}" ] || disk="${args[$i]#file=}" ;;
    *file=*) [ -n "${disk:-}" ] || disk="${args[$i]##*file=}" ;;
  esac
done
. "$POSTERM_REPO/image/lib.sh"
g="$(part_geometry "$disk" 1)"; fat="$disk@@${g%% *}"
n="$(sed -E 's/.*vm-guest.sh start [a-z]+ ([0-9]).*/\1/' <<<"$append")"
slot="$(sed -E 's/.*rauc\.slot=([AB]).*/\1/' <<<"$append")"
flag="$(fdtget "$dtb" /chosen/bootloader tryboot)"
echo "[    0.000000] Kernel command line: $append"
ab() { printf '# x\n[all]\ntryboot_a_b=1\nboot_partition=%s\n[tryboot]\nboot_partition=%s\n' "$1" "$2" > "$STUB_DIR"/ab.txt; mcopy -o -i "$fat" "$STUB_DIR"/ab.txt ::autoboot.txt; }
F="$STUB_DIR"/out.txt
# The end of a boot whose ab-boot restarted into a trial: the posterm-tryboot module's notifier,
# then the kernel's line (STUB_NO_MODULE=1: the kernel's line alone, as without the module).
tryboot_restart() {
  [ "${STUB_NO_MODULE:-}" = 1 ] || echo "[  300.1] posterm_tryboot: restart with command '0 tryboot': no Raspberry Pi firmware (raspberrypi,bcm2835-firmware) to tell, not a Pi"
  echo "reboot: Restarting system with command '0 tryboot'"
}
if [ "$n" = 3 ] && [ "${STUB_NO_FALLBACK:-}" = 1 ]; then
  echo "root: /dev/vda5" > "$F"; mcopy -o -i "$fat" "$F" ::boot-3.out; echo "reboot: Power down"; exit 0
fi
case "$n" in
1) cat > $F <<O
provision: success 0
provision-file: removed
config: posterm:posterm 640
key: posterm:posterm 600
terminal: T42
mounts: / POSTERM-ROOT /var POSTERM-DATA /boot/firmware POSTERMBOOT
root: /dev/vda5
user: uid=999(posterm) groups=999(posterm),101(input)
tryboot-flag: 0 0 0 $flag 
ab-confirm: ab-boot: normal boot of $slot
rauc: booted $slot, primary A
posterm: started 12345, 0 restarts, active
posterm-status: waiting for HQ's rules (no rules file, no bundle held): not selling yet
inputs: keypad
ready: 23000000 us
install: done in 100 s
after-install: primary B, autoboot [all] boot_partition=2 [tryboot] boot_partition=3 
tryboot-module: loaded; posterm_tryboot: loaded: no Raspberry Pi firmware (raspberrypi,bcm2835-firmware) on this board; a tryboot restart has no firmware to tell
dkms: posterm-tryboot/1, 6.1.0-57-arm64, aarch64: installed 
O
   echo "   1.00 [  OK  ] Started posterm.service - posterm"
   mcopy -o -i "$fat" $F ::boot-1.out; tryboot_restart;;
2) ab 3 2; cat > $F <<O
root: /dev/vda6
tryboot-flag: 0 0 0 $flag 
ab-confirm: ab-boot: committed $slot: posterm.service is active (READY=1)
rauc: booted B, primary B
posterm: started 12345, 0 restarts, active
autoboot: [all] boot_partition=3 [tryboot] boot_partition=2 
rauc-slot: B booted boot-status good bundle x
install: done in 100 s
after-install: primary A, autoboot [all] boot_partition=3 [tryboot] boot_partition=2 
ready: 25000000 us
tryboot-module: loaded; posterm_tryboot: loaded: no Raspberry Pi firmware (raspberrypi,bcm2835-firmware) on this board; a tryboot restart has no firmware to tell
dkms: posterm-tryboot/1, 6.1.0-57-arm64, aarch64: installed 
O
   echo "[  OK  ] Started posterm.service - posterm"; echo "python3[1]: ab-boot: committed B: x"
   mcopy -o -i "$fat" $F ::boot-2.out; tryboot_restart;;
3) g5="$(part_geometry "$disk" 5)"; debugfs -R "cat /etc/systemd/system/posterm.service.d/ab-boot-test-broken.conf" "$disk?offset=${g5%% *}" 2>/dev/null | grep -q 'never gets READY' && echo "sh[5]: ab-boot-test: this slot never gets READY"
   echo "python3[1]: ab-boot: fell back from A: posterm.service did not reach READY; rebooting into B"; ab 3 2; echo "reboot: Restarting system";;
4) cat > $F <<O
root: /dev/vda6
tryboot-flag: 0 0 0 $flag 
ab-confirm: ab-boot: normal boot of $slot
rauc: booted B, primary B
posterm: started 12345, 0 restarts, active
rauc-slot: A inactive boot-status bad bundle x
rauc-slot: B booted boot-status good bundle x
previous-cmdline: Kernel command line: root=x rauc.slot=A
previous-ab-confirm: ab-boot: fell back from A: posterm.service did not reach READY; rebooting into B
previous-posterm: 3 starts that never got READY
failed units: 
O
   echo "[  OK  ] Started posterm.service - posterm"
   mcopy -o -i "$fat" $F ::boot-4.out; echo "reboot: Power down";;
esac
