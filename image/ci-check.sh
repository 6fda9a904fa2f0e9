#!/usr/bin/env bash
# CI check of the image route without the kernel (the kernel's initramfs costs ~30 minutes under
# emulation): builds the arm64 root with posterm in it and checks inside it (chroot, qemu-user) that
#   - `posterm --version` runs and the release imports its native dependencies (evdev, cryptography,
#     Pillow) on arm64,
#   - the units are enabled and `systemd-analyze verify` prints nothing for them,
#   - RAUC and the A/B boot backend (ab-boot) run,
#   - the posterm user exists in the input, dialout and lp groups,
#   - the release holds exactly the versions constraints.txt pins, and none of HQ's packages.
# Prints PASS or FAIL as its last line; exit status 0 only on PASS. Needs root.
#   sudo image/ci-check.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"

start=$(now)
bash "$IMAGE_DIR/host-deps.sh"
wheelhouse="$(bash "$IMAGE_DIR/wheelhouse.sh")"
base="$(bash "$IMAGE_DIR/base.sh")"
root="$POSTERM_BUILD/ci-root"
bash "$IMAGE_DIR/rootfs.sh" "$base" "$wheelhouse" "$root"

failures=0
check() {  # check DESCRIPTION COMMAND...: runs COMMAND in the chroot, records the outcome
  local what="$1" output; shift
  if output="$(chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin \
                 LANG=C.UTF-8 "$@" 2>&1)"; then
    log "ok: $what${output:+ ($(echo "$output" | head -n1))}"
  else
    log "FAILED: $what"; echo "$output" | sed 's/^/    /' >&2
    failures=$((failures + 1))
  fi
}

version="$(cat "$wheelhouse/version")"
trap chroot_umount EXIT
chroot_mount "$root"
check "posterm --version" sh -c "posterm --version | grep -Fx 'posterm $version'"
check "arm64 release imports evdev, cryptography, PIL, paho" \
  /opt/posterm/current/bin/python -c 'import platform, evdev, cryptography, PIL, paho.mqtt; print(platform.machine())'
for unit in posterm.service posterm-provision.service posterm-update-check.timer posterm-update.path \
            posterm-os-update.path posterm-ab-confirm.service systemd-timesyncd.service fake-hwclock.service; do
  check "$unit enabled" sh -c "systemctl is-enabled $unit | grep -Fx enabled"
done
check "RAUC's D-Bus service is installed (rauc-service)" test -f \
  /usr/share/dbus-1/system-services/de.pengutronix.rauc.service
check "rauc and the A/B backend (ab-boot) run on arm64" sh -c \
  'rauc --version && { /usr/bin/python3 /usr/lib/posterm/ab-boot frob 2>&1 | grep -q "^ab-boot: usage"; }'
# Any line verify prints is a failure, not only its exit status.
check "systemd-analyze verify (no output)" sh -c \
  'out="$(systemd-analyze verify --man=no /etc/systemd/system/posterm*.service /etc/systemd/system/posterm*.timer /etc/systemd/system/posterm*.path 2>&1)"; rc=$?; [ -z "$out" ] && [ $rc -eq 0 ] || { echo "$out"; exit 1; }'
check "user posterm in input, dialout, lp" sh -c \
  'id posterm && for g in input dialout lp; do id -nG posterm | tr " " "\n" | grep -Fx "$g" >/dev/null || { echo "not in $g"; exit 1; }; done'
check "state and release directories owned right" sh -c \
  '[ "$(stat -c %U:%a /var/lib/posterm)" = posterm:750 ] && [ "$(stat -c %U /var/opt/posterm/releases)" = root ]'
# The release's own packages (not Debian's, seen through the system site packages).
frozen="$(chroot "$root" /opt/posterm/current/bin/python -m pip freeze --local 2>/dev/null)"
if unpinned="$(grep -vixF -f <(grep -v '^#' "$REPO_DIR/constraints.txt") <<<"$frozen" \
                | grep -v '^posterm==')"; then
  log "FAILED: release packages not at constraints.txt's versions:"; echo "$unpinned" | sed 's/^/    /' >&2
  failures=$((failures + 1))
elif hq="$(grep -iE '^(psycopg|starlette|uvicorn|jinja2|argon2|asgi-csrf|itsdangerous|python-multipart)' \
             <<<"$frozen")"; then
  log "FAILED: HQ packages on a terminal:"; echo "$hq" | sed 's/^/    /' >&2
  failures=$((failures + 1))
else
  log "ok: release packages pinned by constraints.txt ($(wc -l <<<"$frozen") packages), no HQ package"
fi
chroot_umount
trap - EXIT

elapsed=$(( $(now) - start ))
if [ "$failures" -eq 0 ]; then
  echo "image ci-check: PASS ($elapsed s)"
else
  echo "image ci-check: FAIL ($failures checks failed, $elapsed s)"
  exit 1
fi
