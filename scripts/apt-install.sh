#!/usr/bin/env bash
# Installs Debian packages: scripts/apt-install.sh PACKAGE...
# Used by scripts/setup.sh and image/'s host scripts. Several set-ups may run at once (a CI run
# beside an image build, the machine's own boot-time apt): `apt-get update` fails rather than
# waits when another holds the lists lock, so posterm's callers queue on one flock, and dpkg's
# frontend lock is waited for (DPkg::Lock::Timeout) rather than failed on.
set -euo pipefail
[ $# -gt 0 ] || exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo flock -w 1800 /var/lock/posterm-apt.lock sh -ec '
  export DEBIAN_FRONTEND=noninteractive
  apt-get -q -o DPkg::Lock::Timeout=900 update
  apt-get -q -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "$@"' apt-install "$@"
