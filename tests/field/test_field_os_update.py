"""Operating-system updates, as far as this machine can show them (docs/field.md):

- a RAUC bundle built by image/os-bundle.sh from small slot images, signed by a code-signing
  certificate of HQ's CA, is verified by Debian's `rauc info` against the box's own RAUC config
  (image/filesystem/etc/rauc/system.conf, keyring = HQ's chain); a bundle signed by another CA, by
  a certificate not for code signing, or tampered with is refused; its install hook points a boot
  slot at its own root;
- ab-boot, RAUC's bootloader backend over the Pi firmware's tryboot, on a simulated boot state
  (autoboot.txt, the device tree's tryboot flag, /proc/cmdline, systemctl and rauc stand-ins that
  record what they were asked): an update is tried once and kept only when posterm is active,
  otherwise marked bad with the committed slot booting again; a trial that never came back is
  marked bad on the next normal boot.

What only a Pi shows (the firmware honouring autoboot.txt and tryboot, a hang falling back) is
listed in docs/field.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from terminal.field.os_update import OsUpdateError, keyring
from terminal.field.update import reboot_into_trial
from terminal.hq.cli import main as posterm_hq

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "image"
AB_BOOT = IMAGE / "filesystem/usr/lib/posterm/ab-boot"
SYSTEM_CONF = IMAGE / "filesystem/etc/rauc/system.conf"

needs_rauc = pytest.mark.skipif(
    not (shutil.which("rauc") and shutil.which("mksquashfs") and shutil.which("mcopy")),
    reason="Debian's rauc, squashfs-tools and mtools are missing: run scripts/setup.sh")


# --- the bundle -----------------------------------------------------------------------------

def slot_images(directory: Path) -> tuple[Path, Path]:
    """A boot slot (FAT with a cmdline.txt) and a root slot (ext4 with some content)."""
    boot = directory / "slot-boot.vfat"
    subprocess.run(["mkfs.vfat", "-C", "-n", "POSTERMSLOT", str(boot), "8192"], check=True,
                   capture_output=True)
    cmdline = directory / "cmdline.txt"
    cmdline.write_text("console=tty0 root=PARTUUID=504f5354-05 rw rauc.slot=A\n")
    subprocess.run(["mcopy", "-i", str(boot), str(cmdline), "::cmdline.txt"], check=True)
    tree = directory / "root-tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/os-release").write_text("PRETTY_NAME=posterm test root\n")
    (tree / "noise").write_bytes(os.urandom(64 * 1024))  # squashfs needs more than a block
    root = directory / "slot-root.ext4"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), "-L", "POSTERM-ROOT", str(root),
                    "16M"], check=True)
    return boot, root


def ca_with_bundle_signer(directory: Path) -> None:
    """HQ's CA in ``directory/ca`` and a bundle signer under it in ``directory/signer``."""
    assert posterm_hq(["ca", "init", str(directory / "ca")]) == 0
    assert posterm_hq(["ca", "bundle-signer", "--ca", str(directory / "ca"), "-o",
                       str(directory / "signer")]) == 0


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HQ's CA with a bundle signer, an hq client identity, and images to pack."""
    directory = tmp_path_factory.mktemp("os")
    ca_with_bundle_signer(directory)
    assert posterm_hq(["ca", "identity", "hq", "--ca", str(directory / "ca"), "-o",
                       str(directory / "hq")]) == 0
    slot_images(directory)
    return directory


def bundle(chain: Path, signer: str, ca: str = "ca",
           out: str = "os.raucb") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(IMAGE / "os-bundle.sh"), str(chain / "slot-boot.vfat"),
         str(chain / "slot-root.ext4"), "2026.12.1", str(chain / signer), str(chain / ca),
         str(chain / out)], capture_output=True, text=True, check=False)


def box_keyring(chain: Path) -> Path:
    """The box's RAUC keyring as its OS installer writes it: HQ's chain and both CRLs."""
    path = chain / "os-keyring.pem"
    if not path.exists():
        assert posterm_hq(["ca", "crl", "--ca", str(chain / "ca"), "-o",
                           str(chain / "crl.pem")]) == 0
        path.write_bytes(keyring((chain / "ca/chain.pem").read_bytes(),
                                 (chain / "crl.pem").read_text()
                                 + (chain / "ca/root.crl").read_text(), datetime.now(UTC)))
    return path


def info(chain: Path, raucb: Path) -> subprocess.CompletedProcess[str]:
    """What a box would say: its RAUC config (check-crl on), its keyring."""
    return subprocess.run(["rauc", "info", "--conf", str(SYSTEM_CONF), "--keyring",
                           str(box_keyring(chain)), str(raucb)],
                          capture_output=True, text=True, check=False)


@needs_rauc
def test_a_bundle_signed_under_hq_ca_verifies_on_the_box_config(chain: Path) -> None:
    built = bundle(chain, "signer")
    assert built.returncode == 0, built.stderr
    checked = info(chain, chain / "os.raucb")
    assert checked.returncode == 0, checked.stderr
    assert "'posterm-rpi-arm64'" in checked.stdout and "'2026.12.1'" in checked.stdout
    assert "Bundle Format: \tverity" in checked.stdout
    assert "CN = os-bundles" in checked.stdout and "CN = posterm terminal CA" in checked.stdout


@needs_rauc
def test_the_install_hook_points_each_boot_slot_at_its_own_root(chain: Path,
                                                                tmp_path: Path) -> None:
    if not (chain / "os.raucb").exists():
        assert bundle(chain, "signer").returncode == 0
    content = tmp_path / "content"
    subprocess.run(["rauc", "extract", "--conf", str(SYSTEM_CONF), "--keyring",
                    str(box_keyring(chain)), str(chain / "os.raucb"), str(content)],
                   check=True, capture_output=True)
    slot = tmp_path / "mounted-boot-slot"
    slot.mkdir()
    for parent, slot_name, partition in (("rootfs.1", "B", "06"), ("rootfs.0", "A", "05")):
        (slot / "cmdline.txt").write_text("console=tty0 root=PARTUUID=504f5354-05 rw "
                                          "rauc.slot=A panic=10\n")
        env = {**os.environ, "RAUC_SLOT_CLASS": "boot", "RAUC_SLOT_PARENT": parent,
               "RAUC_SLOT_MOUNT_POINT": str(slot), "RAUC_BUNDLE_MOUNT_POINT": str(content)}
        subprocess.run(["bash", str(content / "hook.sh"), "slot-post-install"], env=env,
                       check=True)
        words = (slot / "cmdline.txt").read_text().split()
        assert f"root=PARTUUID=504f5354-{partition}" in words
        assert f"rauc.slot={slot_name}" in words and words.count("panic=10") == 1
        assert sum(w.startswith("root=") for w in words) == 1
    env = {**os.environ, "RAUC_SLOT_CLASS": "boot", "RAUC_SLOT_PARENT": "rootfs.7",
           "RAUC_SLOT_MOUNT_POINT": str(slot), "RAUC_BUNDLE_MOUNT_POINT": str(content)}
    assert subprocess.run(["bash", str(content / "hook.sh"), "slot-post-install"], env=env,
                          capture_output=True).returncode == 1


@needs_rauc
def test_bundles_not_signed_for_code_under_hq_ca_are_refused(chain: Path, tmp_path: Path) -> None:
    # HQ's own client certificate (clientAuth) is of the right CA but not for code signing.
    refused = bundle(chain, "hq", out="hq-signed.raucb")
    assert refused.returncode != 0 and "purpose" in refused.stderr
    # A signer of another CA: the bundle builds, the box's keyring refuses it.
    other = tmp_path / "other"
    assert posterm_hq(["ca", "init", str(other / "ca")]) == 0
    assert posterm_hq(["ca", "bundle-signer", "--ca", str(other / "ca"), "-o",
                       str(other / "signer")]) == 0
    foreign = subprocess.run(
        ["rauc", "bundle", "--cert", str(other / "signer.crt"), "--key", str(other / "signer.key"),
         "--intermediate", str(other / "ca/issuing.crt"), str(_content(chain, tmp_path)),
         str(tmp_path / "foreign.raucb")], capture_output=True, text=True, check=False)
    assert foreign.returncode == 0, foreign.stderr
    checked = info(chain, tmp_path / "foreign.raucb")
    assert checked.returncode != 0 and "signature verification failed" in checked.stderr
    # One byte changed in a good bundle: in the signature (at its end), refused at once; in the
    # payload, refused when read (verity: the signed root hash covers every block).
    if not (chain / "os.raucb").exists():
        assert bundle(chain, "signer").returncode == 0
    good = (chain / "os.raucb").read_bytes()
    for where, at in (("signature", len(good) - 200), ("payload", len(good) // 3)):
        tampered = tmp_path / f"tampered-{where}.raucb"
        data = bytearray(good)
        data[at] ^= 0xFF
        tampered.write_bytes(bytes(data))
        read = subprocess.run(["rauc", "extract", "--conf", str(SYSTEM_CONF), "--keyring",
                               str(box_keyring(chain)), str(tampered),
                               str(tmp_path / f"out-{where}")],
                              capture_output=True, text=True, check=False)
        assert read.returncode != 0, (where, read.stderr)
        if where == "signature":
            assert info(chain, tampered).returncode != 0


def _content(chain: Path, tmp_path: Path) -> Path:
    content = tmp_path / "content"
    content.mkdir()
    shutil.copy(chain / "slot-root.ext4", content / "root.ext4")
    (content / "manifest.raucm").write_text(
        "[update]\ncompatible=posterm-rpi-arm64\nversion=1\n[bundle]\nformat=verity\n"
        "[image.rootfs]\nfilename=root.ext4\n")
    return content


# --- ab-boot on a simulated boot state ------------------------------------------------------

class Box:
    """The files ab-boot reads and writes on a Pi, and stand-ins for systemctl and rauc that
    log what they are asked (rauc's mark-good/-bad call the backend with the booted slot, as
    RAUC does)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.autoboot = directory / "boot/autoboot.txt"
        self.autoboot.parent.mkdir()
        self.autoboot.write_text("[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\n"
                                 "boot_partition=3\n")  # as image/genimage.sh writes it
        self.calls = directory / "calls.log"
        self.active = directory / "posterm-active"
        self.module = directory / "sys/module/posterm_tryboot"  # the tryboot module, loaded
        self.module.mkdir(parents=True)
        self.env = {
            **os.environ,
            "POSTERM_AB_AUTOBOOT": str(self.autoboot),
            "POSTERM_AB_TRYBOOT": str(directory / "tryboot"),
            "POSTERM_AB_CMDLINE": str(directory / "cmdline"),
            "POSTERM_AB_STATE": str(directory / "var/lib/rauc/posterm-ab.json"),
            "POSTERM_AB_SYSTEMCTL": str(self._tool("systemctl", f'''
echo "systemctl $*" >> {self.calls}
[ "$1" = is-active ] && {{ [ -e {self.active} ]; exit $?; }}
exit 0''')),
            "POSTERM_AB_RAUC": str(self._tool("rauc", f'''
echo "rauc $*" >> {self.calls}
slot="$(python3 {AB_BOOT} get-current)"
case "$2" in mark-good) python3 {AB_BOOT} set-state "$slot" good ;;
             mark-bad) python3 {AB_BOOT} set-state "$slot" bad ;; esac''')),
            "POSTERM_AB_WAIT": "0",
            "POSTERM_AB_TRYBOOT_MODULE": str(self.module),
        }
        self.boot("A", tryboot=False)

    def _tool(self, name: str, body: str) -> Path:
        path = self.dir / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
        return path

    def boot(self, slot: str, tryboot: bool, posterm_active: bool = True) -> None:
        """What the firmware and kernel leave for this boot."""
        partition = "05" if slot == "A" else "06"
        (self.dir / "cmdline").write_text(f"console=tty0 root=PARTUUID=504f5354-{partition} "
                                          f"rauc.slot={slot} panic=10\n")
        (self.dir / "tryboot").write_bytes((1 if tryboot else 0).to_bytes(4, "big"))
        if posterm_active:
            self.active.touch()
        else:
            self.active.unlink(missing_ok=True)

    def firmware_starts(self, tryboot: bool) -> str:
        """The slot the Pi firmware starts: [tryboot] on the one boot after reboot "0 tryboot",
        [all] otherwise."""
        sections: dict[str, str] = {}
        current = ""
        for line in self.autoboot.read_text().splitlines():
            if line.startswith("["):
                current = line.strip("[]")
            elif line.startswith("boot_partition="):
                sections[current] = line.split("=", 1)[1]
        return {"2": "A", "3": "B"}[sections["tryboot" if tryboot else "all"]]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["python3", str(AB_BOOT), *args], env=self.env,
                              capture_output=True, text=True, check=False)

    def out(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def take_calls(self) -> list[str]:
        lines = self.calls.read_text().splitlines() if self.calls.exists() else []
        self.calls.unlink(missing_ok=True)
        return lines

    def install_to(self, slot: str) -> None:
        """What RAUC 1.8 asks of the backend around writing ``slot`` (as `rauc install` did in
        image/ab-install-test.sh): mark it bad, write it, make it primary."""
        self.out("set-state", slot, "bad")
        self.out("set-primary", slot)


def test_a_fresh_image_boots_a_and_knows_b_is_empty(tmp_path: Path) -> None:
    box = Box(tmp_path)
    assert box.out("get-current") == "A" and box.out("get-primary") == "A"
    assert box.out("get-state", "A") == "good" and box.out("get-state", "B") == "bad"
    assert box.out("confirm") == "ab-boot: normal boot of A"
    assert box.take_calls() == []  # a normal boot asks nothing of posterm or RAUC


def test_an_update_is_tried_once_and_kept_when_posterm_is_ready(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.install_to("B")
    assert box.out("get-primary") == "B"
    assert box.firmware_starts(tryboot=False) == "A"  # a plain reboot would not try it
    box.out("reboot")
    assert box.take_calls() == ["systemctl reboot 0 tryboot"]

    box.boot(box.firmware_starts(tryboot=True), tryboot=True)  # the one trial boot: B
    assert box.out("get-current") == "B"
    assert box.out("confirm") == "ab-boot: committed B: posterm.service is active (READY=1)"
    assert box.take_calls() == ["systemctl is-active --quiet posterm.service",
                                "rauc status mark-good"]
    assert box.firmware_starts(tryboot=False) == "B"  # every boot from now on starts B
    assert box.out("get-primary") == "B" and box.out("get-state", "B") == "good"
    assert box.out("get-state", "A") == "good"  # the slot it replaced still boots

    box.boot(box.firmware_starts(tryboot=False), tryboot=False)
    assert box.out("confirm") == "ab-boot: normal boot of B"
    box.install_to("A")  # the next update goes to the other slot, tried the same way
    assert box.firmware_starts(tryboot=True) == "A" and box.firmware_starts(False) == "B"


def test_no_trial_is_started_that_the_firmware_would_never_be_told_of(tmp_path: Path) -> None:
    """Without the posterm-tryboot module, Debian's kernel restarts plainly: the firmware would
    start A again and its boot check would mark B bad untried. ab-boot refuses instead."""
    box = Box(tmp_path)
    box.install_to("B")
    box.module.rmdir()
    before = box.autoboot.read_text()
    result = box.run("reboot")
    assert result.returncode == 1
    assert result.stderr.startswith("ab-boot: not restarting into the trial of B: the "
                                    "posterm-tryboot module is not loaded")
    assert "modprobe posterm_tryboot" in result.stderr
    assert box.take_calls() == []  # no restart at all
    assert box.autoboot.read_text() == before and box.out("get-primary") == "B"  # still on trial
    box.module.mkdir()  # loaded: the same command starts the trial
    box.out("reboot")
    assert box.take_calls() == ["systemctl reboot 0 tryboot"]


def test_the_os_installer_says_why_ab_boot_would_not_restart(tmp_path: Path) -> None:
    """`posterm update os-install --reboot` after RAUC wrote the slot: ab-boot's refusal is the
    install's failure, with ab-boot's reason (the update CLI prints it and exits 1)."""
    box = Box(tmp_path)
    box.install_to("B")
    box.module.rmdir()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in box.env.items():
            patch.setenv(name, value)
        with pytest.raises(OsUpdateError) as refused:
            reboot_into_trial("2026.12.9", ("python3", str(AB_BOOT)))
        assert box.take_calls() == []
        box.module.mkdir()
        reboot_into_trial("2026.12.9", ("python3", str(AB_BOOT)))
    said = str(refused.value)
    assert said.startswith("OS 2026.12.9 is written to the other slot and on trial, but the box "
                           "did not restart into it: ab-boot: not restarting into the trial of B")
    assert box.take_calls() == ["systemctl reboot 0 tryboot"]


def test_a_plain_reboot_needs_no_tryboot_module(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.module.rmdir()
    box.out("reboot")
    assert box.take_calls() == ["systemctl reboot"]


def test_a_slot_whose_posterm_never_gets_ready_falls_back(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.install_to("B")
    box.boot(box.firmware_starts(tryboot=True), tryboot=True, posterm_active=False)
    said = box.out("confirm")
    assert said.startswith("ab-boot: fell back from B") and "rebooting into A" in said
    assert box.take_calls() == ["systemctl is-active --quiet posterm.service",
                                "rauc status mark-bad", "systemctl reboot"]
    assert box.out("get-state", "B") == "bad" and box.out("get-primary") == "A"
    box.boot(box.firmware_starts(tryboot=False), tryboot=False)  # the plain reboot: A
    assert box.out("get-current") == "A"
    assert box.out("confirm") == "ab-boot: normal boot of A"


def test_a_trial_that_never_came_back_is_marked_bad_on_the_next_boot(tmp_path: Path) -> None:
    """The new kernel hangs or panics: nothing of ab-boot runs in B; the watchdog or panic=10
    restarts the box and the firmware starts [all], A, again."""
    box = Box(tmp_path)
    box.install_to("B")
    box.boot(box.firmware_starts(tryboot=False), tryboot=False)
    assert box.out("confirm") == ("ab-boot: normal boot of A: the trial of B did not complete, "
                                  "marked bad")
    assert box.out("get-state", "B") == "bad" and box.out("get-primary") == "A"
    assert box.firmware_starts(tryboot=False) == "A"


def test_bad_input_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    box = Box(tmp_path)
    before = box.autoboot.read_text()
    for args in (("set-state", "B", "maybe"), ("set-primary", "C"), ("get-state", "a"), ("frob",)):
        result = box.run(*args)
        assert result.returncode == 1 and result.stderr.startswith("ab-boot: "), args
    assert box.autoboot.read_text() == before
    (tmp_path / "cmdline").write_text("console=tty0 root=/dev/mmcblk0p2\n")
    result = box.run("get-current")
    assert result.returncode == 1 and "no rauc.slot=" in result.stderr
    box.autoboot.write_text("[all]\nboot_partition=9\n")
    result = box.run("get-primary")
    assert result.returncode == 1 and "boot_partition" in result.stderr
