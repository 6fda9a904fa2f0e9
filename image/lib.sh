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
