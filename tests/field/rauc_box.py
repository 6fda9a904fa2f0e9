"""Debian's RAUC service, run for real on this machine as a box would run it, for `rauc install`:

- its own system bus: a private ``dbus-daemon`` with a config of its own (system type, a socket in
  the test's directory, a policy that lets the service own ``de.pengutronix.rauc`` and the client
  call it), ``DBUS_SYSTEM_BUS_ADDRESS`` pointing service and client at it;
- the box's ``image/filesystem/etc/rauc/system.conf`` with only its paths moved: the four slots
  are image files (RAUC writes an image to a regular file as to a partition), the status file and
  the keyring (``os-keyring.pem``, as posterm's installer writes it) in the test's directory, and
  ``ab-boot`` as the bootloader backend over a simulated boot state (autoboot.txt, the tryboot
  flag, the kernel command line) that the test reads back;
- ``--override-boot-slot=A``: the service believes it booted slot A, as on a fresh image.

Two things this machine's kernel lacks, and what stands in (docs/field.md):

- device-mapper (no ``/dev/mapper``, no dm-verity), so a verity bundle cannot be mounted: the
  bundles here are built by image/os-bundle.sh in RAUC's plain format (``POSTERM_BUNDLE_FORMAT=
  plain``; same content, same signature, squashfs on a loop device) and the config allows plain;
- vfat, so RAUC cannot mount the boot slot for the bundle's install hook: the service runs with a
  ``mount`` first on its PATH that hands ``mount -t vfat`` to ``fusefat`` (a user-space FAT
  driver over /dev/fuse, read-write) and every other mount to the real one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AB_BOOT = REPO / "image/filesystem/usr/lib/posterm/ab-boot"
SYSTEM_CONF = REPO / "image/filesystem/etc/rauc/system.conf"
SLOTS = {"/dev/disk/by-partuuid/504f5354-02": ("boot-a", 8), "/dev/disk/by-partuuid/504f5354-03":
         ("boot-b", 8), "/dev/disk/by-partuuid/504f5354-05": ("root-a", 16),
         "/dev/disk/by-partuuid/504f5354-06": ("root-b", 16)}  # name, MiB
TIMEOUT = 120.0  # a failure guard only


def missing() -> str | None:
    """Why `rauc install` cannot run here, or None."""
    for tool in ("rauc", "dbus-daemon", "fusefat", "mksquashfs", "mkfs.vfat", "mcopy"):
        if shutil.which(tool) is None:
            return f"{tool} is missing: run scripts/setup.sh"
    if not os.path.exists("/dev/fuse") or not os.path.exists("/dev/loop-control"):
        return "no /dev/fuse or /dev/loop-control"
    if os.geteuid() != 0:
        return "RAUC's service mounts the bundle: root only"
    return None


class RaucBox:
    """A RAUC service on a private bus over image-file slots; ``start()``, then ``install()``."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.slots = directory / "slots"
        self.keyring = directory / "credentials/os-keyring.pem"
        self.autoboot = directory / "boot/autoboot.txt"
        self.bus = directory / "system_bus_socket"
        self.env = {
            **os.environ,
            "DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={self.bus}",
            "POSTERM_AB_AUTOBOOT": str(self.autoboot),
            "POSTERM_AB_TRYBOOT": str(directory / "tryboot"),
            "POSTERM_AB_CMDLINE": str(directory / "cmdline"),
            "POSTERM_AB_STATE": str(directory / "rauc/posterm-ab.json"),
        }
        self._dbus: subprocess.Popen[bytes] | None = None
        self._rauc: subprocess.Popen[bytes] | None = None

    # -- setting up ------------------------------------------------------------------------------

    def _write_state(self) -> None:
        for sub in ("slots", "credentials", "boot", "rauc", "mnt", "bin"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        for name, mib in SLOTS.values():
            with (self.slots / name).open("wb") as slot:
                slot.truncate(mib << 20)
        self.autoboot.write_text("[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\n"
                                 "boot_partition=3\n")  # as image/genimage.sh writes it
        (self.dir / "cmdline").write_text("console=tty0 root=PARTUUID=504f5354-05 "
                                          "rauc.slot=A panic=10\n")
        (self.dir / "tryboot").write_bytes(bytes(4))
        conf = SYSTEM_CONF.read_text()
        for device, (name, _) in SLOTS.items():
            conf = conf.replace(f"device={device}\n", f"device={self.slots / name}\n")
        conf = (conf.replace("statusfile=/var/lib/rauc/status.raucs",
                             f"statusfile={self.dir / 'rauc/status.raucs'}")
                .replace("bundle-formats=-plain", "bundle-formats=plain")
                .replace("path=/var/lib/rauc/posterm-keyring.pem",
                         f"path={self.keyring}")
                .replace("bootloader-custom-backend=/usr/lib/posterm/ab-boot",
                         f"bootloader-custom-backend={AB_BOOT}"))
        settings = "\n".join(line for line in conf.splitlines() if not line.startswith("#"))
        assert "/dev/disk" not in settings and "/var/lib" not in settings, settings
        assert "check-crl=true" in settings
        (self.dir / "system.conf").write_text(conf)
        (self.dir / "bus.conf").write_text(f"""<!DOCTYPE busconfig PUBLIC
 "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={self.bus}</listen>
  <auth>EXTERNAL</auth>
  <!-- Debian's system-bus defaults (/usr/share/dbus-1/system.conf): without the receive_type
       and reply rules the bus's own NameAcquired signal is refused and RAUC's name claim fails
       ("Connection to the system bus can't be made"). Then RAUC's own policy file's grants. -->
  <policy context="default">
    <allow user="root"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <policy user="root">
    <allow own="de.pengutronix.rauc"/>
    <allow send_destination="de.pengutronix.rauc"/>
  </policy>
</busconfig>
""")
        mount = self.dir / "bin/mount"
        mount.write_text(f"""#!/bin/sh
# RAUC mounts the boot slot (vfat) for the install hook; this kernel has no vfat: fusefat.
echo "mount $*" >> {self.dir / 'mount.log'}
if [ "$1" = -t ] && [ "$2" = vfat ] && [ $# -eq 4 ]; then exec fusefat -o rw+ "$3" "$4"; fi
exec /usr/bin/mount "$@"
""")
        mount.chmod(0o755)

    def start(self) -> RaucBox:
        """Bus and service up, or neither left running."""
        self._write_state()
        try:
            self._dbus = subprocess.Popen(
                ["dbus-daemon", f"--config-file={self.dir / 'bus.conf'}", "--nofork",
                 "--nopidfile"], stdout=(self.dir / "dbus.log").open("wb"),
                stderr=subprocess.STDOUT)
            self._wait(lambda: self.bus.exists(), "the private bus's socket")
            self._start_service("A")
        except BaseException:
            self.stop()
            raise
        return self

    def _start_service(self, booted: str) -> None:
        service_env = {**self.env, "PATH": f"{self.dir / 'bin'}:{os.environ['PATH']}"}
        self._rauc = subprocess.Popen(
            ["rauc", f"--conf={self.dir / 'system.conf'}", f"--mount={self.dir / 'mnt'}",
             f"--override-boot-slot={booted}", "service"],
            env=service_env, stdout=(self.dir / "rauc.log").open("ab"), stderr=subprocess.STDOUT)
        self._wait(lambda: self.rauc("status", "--output-format=shell").returncode == 0,
                   "RAUC's service on the private bus")

    def boot(self, slot: str, tryboot: bool) -> None:
        """What the firmware and kernel leave for a boot of ``slot``, and RAUC's service
        started again there."""
        assert self._rauc is not None
        self._rauc.send_signal(signal.SIGTERM)
        self._rauc.wait(timeout=TIMEOUT)
        partition = {"A": "05", "B": "06"}[slot]
        (self.dir / "cmdline").write_text(f"console=tty0 root=PARTUUID=504f5354-{partition} "
                                          f"rauc.slot={slot} panic=10\n")
        (self.dir / "tryboot").write_bytes((1 if tryboot else 0).to_bytes(4, "big"))
        self._start_service(slot)

    def _wait(self, ready: object, what: str) -> None:
        assert callable(ready)
        deadline = time.monotonic() + TIMEOUT
        while not ready():
            for process in (self._dbus, self._rauc):
                if process is not None and process.poll() is not None:
                    raise AssertionError(f"{what}: {process.args[0]} exited "
                                         f"{process.returncode}: {self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not up in {TIMEOUT} s: {self.logs()}")
            time.sleep(0.05)

    def logs(self) -> str:
        return " | ".join(f"{name}: {(self.dir / name).read_text(errors='replace')[-1500:]}"
                          for name in ("dbus.log", "rauc.log") if (self.dir / name).exists())

    def stop(self) -> None:
        for process in (self._rauc, self._dbus):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    # -- using it -------------------------------------------------------------------------------

    def rauc(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The rauc client, on the private bus."""
        return subprocess.run(["rauc", *args], env=self.env, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)

    def install(self, bundle: Path) -> subprocess.CompletedProcess[str]:
        return self.rauc("install", str(bundle))

    def status(self) -> dict[str, str]:
        said = self.rauc("status", "--output-format=shell")
        assert said.returncode == 0, said.stderr
        pairs = (line.split("=", 1) for line in said.stdout.splitlines() if "=" in line)
        return {key: value.strip("'") for key, value in pairs}

    def slot(self, name: str) -> Path:
        return self.slots / name

    def ab_state(self) -> str:
        path = self.dir / "rauc/posterm-ab.json"
        return path.read_text() if path.exists() else ""

    def ab(self, *args: str) -> str:
        result = subprocess.run(["python3", str(AB_BOOT), *args], env=self.env,
                                capture_output=True, text=True, check=True)
        return result.stdout.strip()
