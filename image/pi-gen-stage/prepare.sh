#!/usr/bin/env bash
# For those who build Raspberry Pi OS images with pi-gen (which fetches from Raspberry Pi's own
# servers, unreachable from posterm's CI): installs this stage into a pi-gen checkout with the same
# payload as image/build.sh (the wheelhouse, the repo's systemd/ tree, chroot-script.sh).
#   image/pi-gen-stage/prepare.sh /path/to/pi-gen
# then in pi-gen's config: STAGE_LIST="stage0 stage1 stage2 stage-posterm", and ./build.sh.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

[ $# -eq 1 ] && [ -f "$1/build.sh" ] || die "usage: prepare.sh PI_GEN_DIR (a pi-gen checkout)"
stage="$1/stage-posterm"
wheelhouse="$(bash "$IMAGE_DIR/wheelhouse.sh")"
rm -rf "$stage" && mkdir -p "$stage"
cp -a "$IMAGE_DIR/pi-gen-stage/." "$stage/"
rm "$stage/prepare.sh"
payload="$stage/00-posterm/files/posterm-payload"
mkdir -p "$payload"
cp -a "$wheelhouse" "$payload/wheelhouse"
cp -a "$REPO_DIR/systemd" "$payload/systemd"
cp "$IMAGE_DIR/chroot-script.sh" "$IMAGE_DIR/posterm-provision.example.toml" "$payload/"
cp "$wheelhouse/version" "$payload/version"
# The image's own files, except fstab: pi-gen lays out its two partitions itself (no /var
# data partition there; everything of posterm's state stays on the root).
cp -a "$IMAGE_DIR/filesystem" "$stage/00-posterm/files/filesystem"
rm "$stage/00-posterm/files/filesystem/etc/fstab" "$stage/00-posterm/files/filesystem/etc/hostname" \
   "$stage/00-posterm/files/filesystem/etc/hosts"
log "stage ready: $stage"
