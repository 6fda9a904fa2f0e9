#!/usr/bin/env bash
# Makes the posterm root from a base tarball: unpacks it, adds the image's filesystem/ tree and
# runs chroot-script.sh inside it with the payload (wheelhouse, the repo's systemd/ tree).
#   rootfs.sh BASE_TARBALL WHEELHOUSE ROOT_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -eq 3 ] || die "usage: rootfs.sh BASE_TARBALL WHEELHOUSE ROOT_DIR"
base="$1" wheelhouse="$2" root="$3"
start=$(now)
rm -rf "$root" && mkdir -p "$root"
tar --numeric-owner -xpf "$base" -C "$root"
cp -a "$IMAGE_DIR/filesystem/." "$root/"

payload="$root/tmp/posterm-payload"
mkdir -p "$payload"
cp -a "$wheelhouse" "$payload/wheelhouse"
cp -a "$REPO_DIR/systemd" "$payload/systemd"
cp -a "$IMAGE_DIR/tryboot-module" "$payload/tryboot-module"
cp "$IMAGE_DIR/posterm-provision.example.toml" "$IMAGE_DIR/chroot-script.sh" "$payload/"
cp "$wheelhouse/version" "$payload/version"

trap chroot_umount EXIT
chroot_mount "$root"
chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LANG=C.UTF-8 /bin/bash /tmp/posterm-payload/chroot-script.sh
chroot_umount
trap - EXIT
rm -rf "$payload"
log "root ready in $root in $(( $(now) - start )) s"
