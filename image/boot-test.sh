#!/usr/bin/env bash
# Boots the built image for real in qemu-system-aarch64 (-M virt, with the Debian arm64 kernel and
# initrd that build.sh left beside it) with a provisioning file on its boot partition, and checks
# what the box did: provisioned itself (config, credentials, modes, CSR, file removed), mounted the
# root slot A, /var and the first FAT partition, made the posterm user, started posterm.service,
# and that RAUC knows it booted slot A (image/filesystem/etc/rauc/system.conf, ab-boot). Takes a copy of the image;
# the image itself is not changed. Prints PASS or FAIL as its last line. Needs root for nothing
# but installing qemu-system-arm when missing.
#   image/boot-test.sh [IMAGE]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out="$POSTERM_BUILD/out"
img="${1:-$out/posterm-arm64.img}"
[ -f "$img" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ] || die "run image/build.sh first"
command -v qemu-system-aarch64 >/dev/null || {
  bash "$IMAGE_DIR/../scripts/apt-install.sh" qemu-system-arm; }
for tool in mcopy mtype openssl python3; do command -v "$tool" >/dev/null || die "$tool is missing"; done

work="$POSTERM_BUILD/boot-test"
rm -rf "$work" && mkdir -p "$work"
cp --sparse=always "$img" "$work/disk.img"
# Byte offset of the first (FAT) partition, from the MBR.
offset="$(python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(512); print(struct.unpack_from("<I", d, 446+8)[0]*512)' "$work/disk.img")"
fat="$work/disk.img@@$offset"

# A throw-away broker CA and HQ key, and the provisioning file a technician would write.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=boot-test-ca \
  -keyout "$work/ca.key" -out "$work/ca.pem" -days 2 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$work/hq.key"
openssl pkey -in "$work/hq.key" -pubout -out "$work/hq.pub"
cat > "$work/posterm-provision.toml" <<TOML
[terminal]
store = "S001"
terminal_id = "T42"

[broker]
host = "10.0.2.2"
port = 8883
ca = '''
$(cat "$work/ca.pem")
'''

[hq]
root_public_key = '''
$(cat "$work/hq.pub")
'''

[printer]
backend = "simulated"
TOML
# What runs inside the box once it is up (from systemd.run= on the kernel command line); it leaves
# its findings on the boot partition, read back after it powers the box off.
cat > "$work/boot-test.sh" <<'INNER'
#!/bin/sh
# "start": run from systemd.run=, which boots into kernel-command-line.target instead of the
# default target; so start multi-user.target (the normal boot's units) and this script's "check"
# as a unit after it. "check": wait until systemd has started posterm.service, then look.
if [ "$1" = start ]; then
  systemctl start --no-block multi-user.target
  exec systemd-run --no-block --unit=boot-test --property=After=multi-user.target \
    /bin/sh /boot/firmware/boot-test.sh check
fi
r=/boot/firmware/boot-test.out
for _ in $(seq 60); do
  [ "$(systemctl show -P ExecMainStartTimestampMonotonic posterm.service)" != 0 ] && break
  sleep 2
done
sleep 5
{
  echo "provision: $(systemctl show -P Result posterm-provision.service) $(systemctl show -P ExecMainStatus posterm-provision.service)"
  test -e /boot/firmware/posterm-provision.toml && echo "provision-file: kept" || echo "provision-file: removed"
  ls /boot/firmware/posterm-S001-T42.csr >/dev/null 2>&1 && echo "csr: left for the technician"
  echo "config: $(stat -c '%U:%G %a' /var/lib/posterm/posterm.toml)"
  echo "key: $(stat -c '%U:%G %a' /var/lib/posterm/credentials/terminal.key)"
  grep -q 'terminal_id = "T42"' /var/lib/posterm/posterm.toml && echo "terminal: T42"
  echo "mounts: $(for m in / /var /boot/firmware; do findmnt -n -o TARGET,LABEL "$m"; done | tr -s ' \n' ' ')"
  echo "user: $(id posterm)"
  echo "posterm: started $(systemctl show -P ExecMainStartTimestampMonotonic posterm.service), $(systemctl show -P NRestarts posterm.service) restarts, $(systemctl show -P ActiveState posterm.service)"
  echo "timer: $(systemctl is-enabled posterm-update-check.timer)"
  # The visit on the box's side, from the kernel's start (CLOCK_MONOTONIC, microseconds): the
  # provisioning unit done, posterm started.
  echo "visit: provisioned $(systemctl show -P ExecMainExitTimestampMonotonic posterm-provision.service) us, posterm started $(systemctl show -P ExecMainStartTimestampMonotonic posterm.service) us, userspace from $(systemctl show -P UserspaceTimestampMonotonic) us"
  echo "timesyncd: $(systemctl is-active systemd-timesyncd.service)"
  echo "rauc: booted $(rauc status --output-format=shell 2>/dev/null | sed -n "s/^RAUC_SYSTEM_BOOTED_BOOTNAME='\{0,1\}\([AB]\)'\{0,1\}$/\1/p"), primary $(/usr/lib/posterm/ab-boot get-primary)"
  echo "rauc-said: $(rauc status --output-format=shell 2>&1 | grep -v "^RAUC_SLOT" | tail -n 4 | tr '\n' ' ')"
  echo "rauc-log: $(journalctl -b -u rauc.service -o cat --no-pager | tail -n 4 | tr '\n' ' ')"
  echo "ab-confirm: $(journalctl -b -u posterm-ab-confirm.service -o cat --no-pager | grep '^ab-boot:' | tail -n1)"
  echo "failed units: $(systemctl list-units --failed --plain --no-legend | cut -d' ' -f1 | tr '\n' ' ')"
  journalctl -b -u posterm-provision.service -u posterm.service --no-pager | tail -n 8
} > "$r" 2>&1
sync
systemctl poweroff
INNER
mcopy -i "$fat" "$work/posterm-provision.toml" ::posterm-provision.toml
mcopy -i "$fat" "$work/boot-test.sh" ::boot-test.sh

start=$(now)
log "booting (serial console in $work/serial.log)"
timeout 900 qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -nographic -no-reboot \
  -kernel "$out/vmlinuz" -initrd "$out/initrd.img" \
  -append "root=PARTUUID=$POSTERM_DISK_SIGNATURE-05 rootflags=noatime,commit=60 rauc.slot=A rw console=ttyAMA0 systemd.run=\"/bin/sh /boot/firmware/boot-test.sh start\" systemd.run_success_action=none" \
  -drive if=virtio,format=raw,file="$work/disk.img" \
  -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= < /dev/null > "$work/serial.log" 2>&1 || true
log "powered off after $(( $(now) - start )) s"

mtype -i "$fat" ::boot-test.out > "$work/boot-test.out" 2>/dev/null || die "the box left no findings; see $work/serial.log"
sed 's/^/    /' "$work/boot-test.out" >&2
failures=0
expect() {
  if grep -Eq "$1" "$work/boot-test.out"; then log "ok: $1"; else log "FAILED: $1"; failures=$((failures + 1)); fi
}
expect '^provision: success 0$'
expect '^provision-file: removed$'
expect '^csr: left for the technician$'
expect '^config: posterm:posterm 640$'
expect '^key: posterm:posterm 600$'
expect '^terminal: T42$'
expect 'mounts: / POSTERM-ROOT /var POSTERM-DATA /boot/firmware POSTERMBOOT'
expect '^user: .*\(input\)'
expect '^rauc: booted A, primary A$'
expect '^ab-confirm: ab-boot: normal boot of A$'
expect '^posterm: started [1-9]'
# Nothing else may fail. posterm.service itself may, for as long as `posterm run` (the daemon) is
# not in the wheel: it is started, exits 2 and is restarted, which is what is checked above.
expect '^failed units: (posterm.service )?$'
if [ "$failures" -eq 0 ]; then echo "image boot-test: PASS"; else echo "image boot-test: FAIL ($failures)"; exit 1; fi
