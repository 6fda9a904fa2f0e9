#!/usr/bin/env bash
# Packs the slot images genimage.sh made into a RAUC bundle (verity format) signed with a
# certificate of HQ's CA for code signing (`posterm-hq ca bundle-signer`), which the boxes' RAUC
# keyring (HQ's CA chain, check-purpose=codesign) accepts. The boot slot's cmdline.txt is pointed at
# its own root slot by the bundle's install hook (slot-cmdline.sh).
#   os-bundle.sh BOOT_VFAT ROOT_EXT4 VERSION SIGNER_PREFIX CA_DIR OUT.raucb
# SIGNER_PREFIX.crt/.key is the signer; CA_DIR/issuing.crt goes in as the intermediate. Checks the
# bundle it wrote with `rauc info --keyring CA_DIR/chain.pem` (the box's config, CRLs aside)
# before it says done.
# POSTERM_BUNDLE_FORMAT=plain packs the same content in RAUC's plain format, which the boxes refuse
# (bundle-formats=-plain) and only tests use: it installs where the kernel has no dm-verity
# (tests/field/test_field_rauc_install.py).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

format="${POSTERM_BUNDLE_FORMAT:-verity}"
case "$format" in verity|plain) ;; *) die "POSTERM_BUNDLE_FORMAT is verity or plain, not '$format'" ;; esac
[ $# -eq 6 ] || die "usage: os-bundle.sh BOOT_VFAT ROOT_EXT4 VERSION SIGNER_PREFIX CA_DIR OUT.raucb"
boot="$1" rootfs="$2" version="$3" signer="$4" ca="$5" bundle="$6"
for file in "$boot" "$rootfs" "$signer.crt" "$signer.key" "$ca/issuing.crt" "$ca/chain.pem"; do
  [ -f "$file" ] || die "$file is missing"
done
for tool in rauc mksquashfs; do
  command -v "$tool" >/dev/null || die "$tool is missing (Debian's rauc and squashfs-tools)"
done
work="$(mktemp -d "${TMPDIR:-/tmp}/posterm-bundle.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir "$work/content"
# Hard links where the file system allows (the root image is 1.5 GiB), copies elsewhere.
ln "$boot" "$work/content/boot.vfat" 2>/dev/null || cp --sparse=always "$boot" "$work/content/boot.vfat"
ln "$rootfs" "$work/content/root.ext4" 2>/dev/null || cp --sparse=always "$rootfs" "$work/content/root.ext4"
cp "$IMAGE_DIR/slot-cmdline.sh" "$work/content/slot-cmdline.sh"
cat > "$work/content/hook.sh" <<HOOK
#!/bin/bash
# RAUC install hook: after boot.vfat is written to a boot slot, point its cmdline.txt at the root
# slot it belongs to (RAUC_SLOT_PARENT rootfs.0 = A, rootfs.1 = B).
set -euo pipefail
[ "\$1" = slot-post-install ] || exit 0
[ "\${RAUC_SLOT_CLASS:-}" = boot ] || exit 0
case "\${RAUC_SLOT_PARENT:-}" in
  rootfs.0) slot=A ;;
  rootfs.1) slot=B ;;
  *) echo "hook: boot slot without a known parent: '\${RAUC_SLOT_PARENT:-}'" >&2; exit 1 ;;
esac
bash "\$RAUC_BUNDLE_MOUNT_POINT/slot-cmdline.sh" "\$RAUC_SLOT_MOUNT_POINT/cmdline.txt" "\$slot" \
  $POSTERM_DISK_SIGNATURE
HOOK
chmod +x "$work/content/hook.sh" "$work/content/slot-cmdline.sh"
cat > "$work/content/manifest.raucm" <<MANIFEST
[update]
compatible=$POSTERM_RAUC_COMPATIBLE
version=$version
description=posterm operating system $version ($POSTERM_SUITE $POSTERM_ARCH)

[bundle]
format=$format

[hooks]
filename=hook.sh

[image.rootfs]
filename=root.ext4

[image.boot]
filename=boot.vfat
hooks=post-install
MANIFEST
rm -f "$bundle"
start=$(now)
rauc bundle --cert "$signer.crt" --key "$signer.key" --intermediate "$ca/issuing.crt" \
  "$work/content" "$bundle" >&2
# The box's view: HQ's chain as the keyring, code signing only (image/filesystem/etc/rauc).
# The CRLs are the box's to check (HQ announces them with the bundle; check-crl needs them in the
# keyring), so this check leaves them out: it proves chain, purpose, format and compatible.
sed -e "s/^bundle-formats=.*/bundle-formats=$([ "$format" = plain ] && echo plain || echo -plain)/" \
  -e '/^check-crl=/d' "$IMAGE_DIR/filesystem/etc/rauc/system.conf" > "$work/system.conf"
rauc info --conf "$work/system.conf" --keyring "$ca/chain.pem" "$bundle" >/dev/null
log "bundle $bundle ($(du -h "$bundle" | cut -f1)) signed by $(openssl x509 -noout -subject -in "$signer.crt" | sed 's/^subject=//') in $(( $(now) - start )) s, verified"
