# Shared helpers of the image scripts; sourced, never run.
# shellcheck shell=bash

IMAGE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$IMAGE_DIR")"
# shellcheck source=config
. "$IMAGE_DIR/config"
: "${POSTERM_BUILD:=$REPO_DIR/build/image}"

log() { printf '%s [%s] %s\n' "$(date +%T)" "$(basename "$0" .sh)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Seconds since the epoch, for the timings the scripts report.
now() { date +%s; }

# Mounts what a chroot needs (proc, sys, dev, dev/pts) and unmounts them on exit.
CHROOT_MOUNTS=()
chroot_mount() {
  local root="$1" dir
  for dir in proc sys dev dev/pts; do
    mkdir -p "$root/$dir"
  done
  mount -t proc proc "$root/proc" && CHROOT_MOUNTS+=("$root/proc")
  mount -t sysfs sysfs "$root/sys" && CHROOT_MOUNTS+=("$root/sys")
  mount --bind /dev "$root/dev" && CHROOT_MOUNTS+=("$root/dev")
  mount -t devpts devpts "$root/dev/pts" && CHROOT_MOUNTS+=("$root/dev/pts")
}
chroot_umount() {
  local i
  for ((i=${#CHROOT_MOUNTS[@]}-1; i>=0; i--)); do
    umount -l "${CHROOT_MOUNTS[$i]}" 2>/dev/null || true
  done
  CHROOT_MOUNTS=()
}

# ---------------------------------------------------------------- the boot tests under qemu
# (boot-test.sh, ab-boot-test.sh, pi-firmware.sh)

# Byte offset and size of partition N (1-4 primary, 5 on logical, in the extended partition's
# chain of EBRs) of a disk image with an MBR: "OFFSET SIZE".
part_geometry() {
  python3 - "$1" "$2" <<'PY'
import struct, sys
image, wanted = sys.argv[1], int(sys.argv[2])
with open(image, "rb") as disk:
    def entries(lba):
        disk.seek(lba * 512)
        sector = disk.read(512)
        if sector[510:512] != b"\x55\xaa":
            sys.exit(f"{image}: no partition table at sector {lba}")
        return [struct.unpack_from("<B3xBxxxII", sector, 446 + 16 * i)[1:] for i in range(4)]
    primary = entries(0)
    found = {n + 1: (start, size) for n, (kind, start, size) in enumerate(primary) if kind}
    extended = next((start for kind, start, _ in primary if kind in (0x05, 0x0F, 0x85)), None)
    ebr, number = extended, 5
    while ebr is not None:
        (kind, start, size), (next_kind, next_start, _), *_ = entries(ebr)
        if kind:
            found[number] = (ebr + start, size)
        number += 1
        ebr = extended + next_start if next_kind else None
if wanted not in found:
    sys.exit(f"{image}: no partition {wanted}")
start, size = found[wanted]
print(start * 512, size * 512)
PY
}

# What the boot tests need on the host: qemu-system-aarch64 (installed from Debian when missing,
# which needs root), mtools for the FAT partitions, fdtput for the device tree.
boot_test_tools() {
  command -v qemu-system-aarch64 >/dev/null || bash "$REPO_DIR/scripts/apt-install.sh" qemu-system-arm >&2
  command -v fdtput >/dev/null || bash "$REPO_DIR/scripts/apt-install.sh" device-tree-compiler >&2
  local tool
  for tool in mcopy mtype openssl python3 fdtput debugfs mke2fs; do
    command -v "$tool" >/dev/null || die "$tool is missing"
  done
}

# The provisioning file a technician would write, for a throw-away broker CA and HQ key made in
# DIR: DIR/posterm-provision.toml (store S001, terminal T42, the dummy printer: python-escpos's, in memory).
write_provisioning() {
  local dir="$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=boot-test-ca \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 2 2>/dev/null
  openssl genpkey -algorithm ed25519 -out "$dir/hq.key"
  openssl pkey -in "$dir/hq.key" -pubout -out "$dir/hq.pub"
  cat > "$dir/posterm-provision.toml" <<TOML
[terminal]
store = "S001"
terminal_id = "T42"

[broker]
host = "10.0.2.2"
port = 8883
ca = '''
$(cat "$dir/ca.pem")
'''

[hq]
root_public_key = '''
$(cat "$dir/hq.pub")
'''
card_key = '$(openssl rand -hex 32)'

# No [input.NAME] section, as in HQ's template: provisioning gives the box its keypad, card
# reader and scanner (evdev, by name). No rules either: they come in HQ's signed bundle, and
# posterm waits for it (READY, "waiting for HQ's rules"); the emulator has no broker.
[printer]
backend = "dummy"
TOML
}

# The machine both boot tests start: -M virt, 2 cores, 1 GiB, the disk on virtio, user network.
QEMU_MACHINE=(-M virt -cpu cortex-a72 -smp 2 -m 1024)
# What the host adds to the kernel command line of each boot: the serial console, and patience
# with devices: under TCG on a loaded host, udev's coldplug took more than systemd's default 90 s
# and /var's device timed out into emergency mode (2026-12-05, load average 12).
VM_CMDLINE="console=ttyAMA0 systemd.default_device_timeout_sec=600"

# run_qemu LOG SECONDS KERNEL INITRD APPEND DISK [QEMU ARGS...]: one boot until the guest powers off
# or resets (-no-reboot), at most SECONDS. The serial console goes to LOG, each line prefixed with
# the seconds since qemu started (so a boot's times can be read from the console). Prints the
# boot's duration in seconds.
run_qemu() {
  local serial="$1" limit="$2" kernel="$3" initrd="$4" append="$5" disk="$6" start
  shift 6
  start=$(date +%s.%N)
  timeout "$limit" qemu-system-aarch64 "${QEMU_MACHINE[@]}" -nographic -no-reboot \
    -kernel "$kernel" -initrd "$initrd" -append "$append" \
    -drive if=virtio,format=raw,file="$disk" \
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= "$@" < /dev/null 2>&1 \
    | python3 -c '
import sys, time
start = time.monotonic()
for line in sys.stdin.buffer:
    sys.stdout.buffer.write(b"%8.2f " % (time.monotonic() - start) + line.rstrip(b"\r\n") + b"\n")
    sys.stdout.flush()' > "$serial" || true
  python3 -c 'import sys; print(f"{float(sys.argv[2]) - float(sys.argv[1]):.1f}")' "$start" "$(date +%s.%N)"
}

# expect FILE REGEX: one check of the boot tests, counted in $failures.
failures=0
expect() {
  if grep -Eq -- "$2" "$1"; then log "ok: $2"; else log "FAILED: $2 (in $1)"; failures=$((failures + 1)); fi
}
