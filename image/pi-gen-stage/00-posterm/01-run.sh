#!/bin/bash -e
# pi-gen: the same payload and chroot script as image/build.sh (see image/chroot-script.sh).
cp -a files/filesystem/. "${ROOTFS_DIR}/"
rm -rf "${ROOTFS_DIR}/tmp/posterm-payload"
cp -a files/posterm-payload "${ROOTFS_DIR}/tmp/posterm-payload"
on_chroot <<'CHROOT'
bash /tmp/posterm-payload/chroot-script.sh
rm -rf /tmp/posterm-payload
CHROOT
