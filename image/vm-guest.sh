#!/bin/bash
# Runs inside the booted image for the boot tests (boot-test.sh, ab-boot-test.sh): the host puts it
# on the first FAT partition (/boot/firmware) and names it in systemd.run= on the kernel command
# line; the findings of boot N go back there as boot-N.out, which the host reads once the box is off.
#   start STEP N   (from systemd.run=, which boots into kernel-command-line.target instead of the
#                  default target) start multi-user.target, the normal boot's units, and "STEP N"
#                  as a unit after it
#   visit N        the findings of this boot, then power off (boot-test.sh)
#   install N      the findings, then `rauc install` of the bundle on the disk labelled ABBUNDLE
#                  (with the keyring beside it) into the other slot, and `ab-boot reboot`
#                  (ab-boot-test.sh)
#   check N        the findings and what the boot before this one decided, then power off
#                  (ab-boot-test.sh)
set -euo pipefail
step="$1" n="$2"
fw=/boot/firmware
out="$fw/boot-$n.out"
ab=/usr/lib/posterm/ab-boot
show() { systemctl show -P "$2" "$1"; }

if [ "$step" = start ]; then
  systemctl start --no-block multi-user.target
  exec systemd-run --no-block --unit="boot-test-$n" --property=After=multi-user.target \
    /bin/bash "$fw/vm-guest.sh" "$2" "$3"
fi

findings() {
  for _ in $(seq 60); do
    [ "$(show posterm.service ExecMainStartTimestampMonotonic)" != 0 ] && break
    sleep 2
  done
  # Type=notify: "activating" until READY=1 (Python's imports take a while under TCG).
  for _ in $(seq 60); do
    [ "$(show posterm.service ActiveState)" != activating ] && break
    sleep 2
  done
  sleep 5
  echo "provision: $(show posterm-provision.service Result) $(show posterm-provision.service ExecMainStatus)"
  if [ -e "$fw/posterm-provision.toml" ]; then echo "provision-file: kept"; else echo "provision-file: removed"; fi
  if ls "$fw"/posterm-S001-T42.csr >/dev/null 2>&1; then echo "csr: left for the technician"; fi
  echo "config: $(stat -c '%U:%G %a' /var/lib/posterm/posterm.toml)"
  echo "key: $(stat -c '%U:%G %a' /var/lib/posterm/credentials/terminal.key)"
  if grep -q 'terminal_id = "T42"' /var/lib/posterm/posterm.toml; then echo "terminal: T42"; fi
  echo "mounts: $(for m in / /var /boot/firmware; do findmnt -n -o TARGET,LABEL "$m"; done | tr -s ' \n' ' ')"
  echo "root: $(findmnt -n -o SOURCE /)"
  echo "machine-id: $(cat /etc/machine-id)"
  echo "user: $(id posterm)"
  echo "posterm: started $(show posterm.service ExecMainStartTimestampMonotonic), $(show posterm.service NRestarts) restarts, $(show posterm.service ActiveState)"
  echo "timer: $(systemctl is-enabled posterm-update-check.timer)"
  echo "posterm-status: $(show posterm.service StatusText)"
  if grep -q '^\[input\.keypad\]' /var/lib/posterm/posterm.toml; then echo "inputs: keypad"; fi
  # The visit on the box's side, from the kernel's start (CLOCK_MONOTONIC, microseconds): the
  # provisioning unit done, posterm started, posterm active (Type=notify: READY=1).
  echo "visit: provisioned $(show posterm-provision.service ExecMainExitTimestampMonotonic) us, posterm started $(show posterm.service ExecMainStartTimestampMonotonic) us, userspace from $(systemctl show -P UserspaceTimestampMonotonic) us"
  echo "ready: $(show posterm.service ActiveEnterTimestampMonotonic) us"
  echo "timesyncd: $(systemctl is-active systemd-timesyncd.service || true)"
  echo "rauc: booted $(rauc status --output-format=shell 2>/dev/null | sed -n "s/^RAUC_SYSTEM_BOOTED_BOOTNAME='\{0,1\}\([AB]\)'\{0,1\}$/\1/p"), primary $("$ab" get-primary)"
  echo "rauc-said: $(rauc status --output-format=shell 2>&1 | grep -v "^RAUC_SLOT" | tail -n 4 | tr '\n' ' ')"
  echo "rauc-log: $(journalctl -b -u rauc.service -o cat --no-pager | tail -n 4 | tr '\n' ' ')"
  # The A/B state: the tryboot flag the firmware set in the device tree, what the boot check
  # decided, autoboot.txt's two sections, RAUC's view of the root slots.
  echo "tryboot-flag: $(od -An -tu1 /proc/device-tree/chosen/bootloader/tryboot 2>/dev/null | tr -s ' ' | sed 's/^ //') "
  # The posterm-tryboot module (DKMS; docs/field.md, section 6): built for this kernel, loaded
  # at boot (modules-load.d), and what it said on loading (under qemu: no Pi firmware to tell;
  # the kernel's own lines about the module, "loading out-of-tree module taints kernel", come first).
  echo "tryboot-module: $([ -d /sys/module/posterm_tryboot ] && echo loaded || echo 'not loaded'); $(journalctl -b -k -o cat --no-pager | grep -m1 '^posterm_tryboot: loaded')"
  # (stderr dropped: dkms 3.0.10 says "echo: write error: Broken pipe" from a pipe of its own)
  echo "dkms: $(dkms status posterm-tryboot 2>/dev/null | tr '\n' ' ')"
  echo "ab-confirm: $(journalctl -b -u posterm-ab-confirm.service -o cat --no-pager | grep '^ab-boot:' | tail -n1)"
  echo "autoboot: $(grep -E '^\[|boot_partition' "$fw/autoboot.txt" | tr '\n' ' ')"
  rauc status --detailed --output-format=json 2>/dev/null | python3 -c '
import json, sys
status = json.load(sys.stdin)
print("rauc-primary:", status.get("boot_primary"))
for entry in status.get("slots", []):
    for name, slot in entry.items():
        if slot.get("class") == "rootfs":
            bundle = (slot.get("slot_status") or {}).get("bundle") or {}
            print("rauc-slot:", slot.get("bootname"), slot.get("state"), "boot-status",
                  slot.get("boot_status"), "bundle", bundle.get("version"))' || echo "rauc-slot: no status"
  echo "failed units: $(systemctl list-units --failed --plain --no-legend | cut -d' ' -f1 | tr '\n' ' ')"
  journalctl -b -u posterm-provision.service -u posterm.service --no-pager | tail -n 8
}

case "$step" in
  visit)
    findings > "$out" 2>&1 || echo "findings: stopped at $?" >> "$out"
    sync
    systemctl poweroff
    ;;
  install)
    install_bundle() {
      mkdir -p /run/ab-bundle
      mount -o ro LABEL=ABBUNDLE /run/ab-bundle || return 1
      # The keyring an OS update over MQTT writes (HQ's chain and CRLs; docs/field.md, section 6).
      install -D -m 0644 /run/ab-bundle/keyring.pem /var/lib/rauc/posterm-keyring.pem || return 1
      started=$(date +%s)
      if rauc install /run/ab-bundle/posterm-os.raucb > /run/ab-install.log 2>&1; then
        echo "install: done in $(( $(date +%s) - started )) s"
      else
        echo "install: failed ($?) after $(( $(date +%s) - started )) s"
      fi
      tail -n 5 /run/ab-install.log | sed 's/^/install-said: /'
      journalctl -b -u rauc.service -o cat --no-pager | grep -E 'slot|Slot|hook|verity' | tail -n 12 | sed 's/^/rauc-service: /'
      echo "after-install: primary $("$ab" get-primary), autoboot $(grep -E '^\[|boot_partition' "$fw/autoboot.txt" | tr '\n' ' ')"
      rauc status --detailed --output-format=shell 2>/dev/null | grep -E 'BOOT_PRIMARY|BOOT_STATUS|BUNDLE_VERSION' | sed 's/^/after-install-rauc: /'
      umount /run/ab-bundle
    }
    { findings || echo "findings: stopped at $?"; install_bundle || echo "install: stopped at $?"; } > "$out" 2>&1
    sync
    # Into the slot on trial with reboot "0 tryboot"; a failed install leaves none, and the
    # plain reboot that follows fails the host's check.
    "$ab" reboot
    ;;
  check)
    set +e  # whatever a finding says, the box must power off (the host waits for it)
    {
      findings || echo "findings: stopped at $?"
      # The boot before this one: the journal is on /var, shared by both slots, but each root
      # slot has its own machine id (so its own journal directory): -m reads them all. This
      # journalctl refuses -b with -m ("Using --boot or --list-boots with --merge is not
      # supported", which ended the script before its power-off; -k means this boot only), so the
      # previous boot is the latest boot id in the merged kernel log other than this one's.
      this="$(tr -d - < /proc/sys/kernel/random/boot_id)"
      prev="$(journalctl -m _TRANSPORT=kernel -o export --output-fields=_BOOT_ID --no-pager | sed -n 's/^_BOOT_ID=//p' | uniq | grep -vx "$this" | tail -n1)"
      echo "previous-boot: ${prev:-none}"
      echo "previous-cmdline: $(journalctl -m "_BOOT_ID=$prev" _TRANSPORT=kernel -o cat --no-pager | grep -m1 '^Kernel command line:')"
      journalctl -m "_BOOT_ID=$prev" -u posterm-ab-confirm.service -o cat --no-pager | grep '^ab-boot:' | sed 's/^/previous-ab-confirm: /'
      echo "previous-posterm: $(journalctl -m "_BOOT_ID=$prev" -u posterm.service -o cat --no-pager | grep -c 'never gets READY') starts that never got READY"
    } > "$out" 2>&1
    sync
    systemctl poweroff
    ;;
  *) echo "vm-guest.sh: unknown step '$step'" >&2; exit 2 ;;
esac
