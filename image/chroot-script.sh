#!/usr/bin/env bash
# Runs inside the arm64 root (under qemu-user), CustomPiOS's start_chroot_script: installs the
# posterm release offline from the wheelhouse, the units, users, rules and directories from the
# repo's systemd/ tree, and enables them. Input: the payload that rootfs.sh copies to $PAYLOAD.
set -euo pipefail
PAYLOAD=/tmp/posterm-payload
version="$(cat "$PAYLOAD/version")"
home=/var/opt/posterm
release="$home/releases/$version"

echo "chroot: posterm $version into $release" >&2
mkdir -p "$home/releases"
# System site packages give the venv Debian's python3-evdev (PyPI has no aarch64 wheel).
python3 -m venv --system-site-packages "$release"
"$release/bin/pip" install --quiet --no-index --no-cache-dir --find-links "$PAYLOAD/wheelhouse" \
  "posterm==$version"
ln -sfn "releases/$version" "$home/current"
# `previous` is the release to go back to; on a fresh image that is the same one (a rollback
# refuses it), and the update check unit's binary exists.
ln -sfn "releases/$version" "$home/previous"
[ -e /opt/posterm ] || ln -s "$home" /opt/posterm
ln -sf /opt/posterm/current/bin/posterm /usr/local/bin/posterm

# One source for the units, users and rules: the repo's systemd/ tree.
install -m 0644 "$PAYLOAD"/systemd/*.service "$PAYLOAD"/systemd/*.timer "$PAYLOAD"/systemd/*.path \
  /etc/systemd/system/
install -D -m 0644 "$PAYLOAD/systemd/sysusers.d/posterm.conf" /usr/lib/sysusers.d/posterm.conf
install -D -m 0644 "$PAYLOAD/systemd/tmpfiles.d/posterm.conf" /usr/lib/tmpfiles.d/posterm.conf
install -D -m 0644 "$PAYLOAD/systemd/udev/99-posterm.rules" /etc/udev/rules.d/99-posterm.rules
systemd-sysusers
systemd-tmpfiles --create --prefix=/var/lib/posterm --prefix=/var/lib/posterm-trust \
  --prefix=/var/opt/posterm --prefix=/var/cache/posterm --prefix=/var/lib/fake-hwclock

if [ -d /boot/firmware ]; then
  install -m 0644 "$PAYLOAD/posterm-provision.example.toml" /boot/firmware/
fi

systemctl enable posterm.service posterm-provision.service posterm-update-check.timer \
  posterm-update.path posterm-os-update.path posterm-ab-confirm.service systemd-timesyncd.service fake-hwclock.service \
  ssh.service
# Debian's minimal root has no network manager: systemd-networkd with DHCP on the wired port.
# (Raspberry Pi OS, built through pi-gen-stage/, keeps its NetworkManager.)
if [ ! -e /usr/lib/systemd/system/NetworkManager.service ]; then
  systemctl enable systemd-networkd.service systemd-resolved.service
  ln -sf /run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
fi
# The posterm-tryboot module (docs/field.md, section 6: Debian's kernel does not pass
# `reboot "0 tryboot"` to the Pi firmware), built by DKMS against every kernel whose headers are
# here; only the kernel base (base.sh --kernel) has dkms and headers, CI's root has neither.
# /etc/modules-load.d/posterm-tryboot.conf (filesystem/) loads it at boot.
if command -v dkms >/dev/null; then
  module_version="$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$PAYLOAD/tryboot-module/dkms.conf")"
  rm -rf "/usr/src/posterm-tryboot-$module_version"
  cp -a "$PAYLOAD/tryboot-module" "/usr/src/posterm-tryboot-$module_version"
  dkms add "posterm-tryboot/$module_version"
  built=0
  for build in /lib/modules/*/build; do
    [ -e "$build" ] || continue
    kernel="$(basename "$(dirname "$build")")"
    # -k: the chroot's uname -r is the build host's kernel.
    dkms install "posterm-tryboot/$module_version" -k "$kernel"
    echo "chroot: $(modinfo -k "$kernel" -F filename posterm_tryboot) for $kernel" >&2
    built=$((built + 1))
  done
  [ "$built" -gt 0 ] || { echo "chroot: dkms is installed but no kernel headers are" >&2; exit 1; }
  dkms status posterm-tryboot >&2
  # A module signing key DKMS may have made here would be the same on every box flashed from
  # this image; the Pi boots without Secure Boot, so the kernel loads the module unsigned too.
  rm -f /var/lib/dkms/mok.key /var/lib/dkms/mok.pub
fi

# Host keys are made per box on first boot (ssh.service drop-in); none ship in the image.
rm -f /etc/ssh/ssh_host_*
# Nothing of the build's package caches stays in the image.
apt-get clean
rm -rf /var/lib/apt/lists/* /root/.cache

/usr/local/bin/posterm --version
