"""The host's stand-in for the Raspberry Pi firmware in the A/B boot test (image/pi-firmware.sh,
image/ab-boot-test.sh): which partition it starts from autoboot.txt and the tryboot flag, what it
hands the kernel, how it reads the end of a boot from the console; and the MBR reader both boot
tests use (lib.sh's part_geometry), logical partitions included. On small disks made here."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "image/pi-firmware.sh"
MIB = 1024 * 1024

pytestmark = pytest.mark.skipif(
    not (shutil.which("mcopy") and shutil.which("mkfs.vfat") and shutil.which("fdtput")),
    reason="mtools, dosfstools and device-tree-compiler are missing: run scripts/setup.sh")

AUTOBOOT = "[all]\ntryboot_a_b=1\nboot_partition={all}\n[tryboot]\nboot_partition={trial}\n"


def fat(path: Path, files: dict[str, bytes]) -> Path:
    subprocess.run(["mkfs.vfat", "-C", str(path), str(2 * 1024)], check=True,
                   stdout=subprocess.DEVNULL)
    for name, content in files.items():
        (path.parent / name).write_bytes(content)
        subprocess.run(["mcopy", "-i", str(path), str(path.parent / name), f"::{name}"],
                       check=True)
    return path


def slot(tmp: Path, name: str, tryboot_txt: bool = False) -> Path:
    files = {
        "config.txt": b"arm_64bit=1\nenable_uart=1\nupstream_kernel=1\n\n"
                      b"kernel=vmlinuz-6.1.0-" + name.encode() + b"\n# a comment\n"
                      b"initramfs initrd.img-6.1.0-" + name.encode() + b"\n",
        f"vmlinuz-6.1.0-{name}": f"kernel of {name}".encode() + bytes(range(256)),
        f"initrd.img-6.1.0-{name}": f"initrd of {name}".encode(),
        "cmdline.txt": f"console=tty0 root=PARTUUID=504f5354-0{5 if name == 'A' else 6} rw "
                       f"rauc.slot={name} panic=10\n".encode(),
    }
    if tryboot_txt:
        files["tryboot.txt"] = (b"kernel=vmlinuz-6.1.0-" + name.encode() + b"\n"
                                b"initramfs initrd.img-6.1.0-" + name.encode() + b"\n")
        files["config.txt"] = b"kernel=none\ninitramfs none\n"
    directory = tmp / f"slot-{name}"
    directory.mkdir()
    return fat(directory / "slot.vfat", files)


def disk(tmp: Path, autoboot: str, tryboot_txt: bool = False) -> Path:
    """MBR: 1-3 FAT of 2 MiB at 1, 3 and 5 MiB, 4 extended from 7 MiB holding logical 5 (1 MiB
    at 8 MiB) and 6 (2 MiB at 10 MiB), as genimage lays the image out (with smaller sizes)."""
    config = tmp / "config"
    config.mkdir()
    images = {1: fat(config / "config.vfat", {"autoboot.txt": autoboot.encode()}),
              2: slot(tmp, "A", tryboot_txt), 3: slot(tmp, "B", tryboot_txt)}
    path = tmp / "disk.img"
    data = bytearray(13 * MIB)

    def entry(kind: int, start: int, size: int) -> bytes:
        return struct.pack("<B3xB3xII", 0, kind, start // 512, size // 512)

    def table(offset: int, entries: list[bytes]) -> None:
        body = b"".join(entries).ljust(64, b"\0")
        data[offset + 446:offset + 510] = body
        data[offset + 510:offset + 512] = b"\x55\xaa"

    table(0, [entry(0x0C, MIB, 2 * MIB), entry(0x0C, 3 * MIB, 2 * MIB),
              entry(0x0C, 5 * MIB, 2 * MIB), entry(0x0F, 7 * MIB, 6 * MIB)])
    # EBRs: the logical partition relative to its EBR, the next EBR relative to the extended one.
    table(7 * MIB, [entry(0x83, MIB, MIB), entry(0x05, 2 * MIB, 3 * MIB)])
    table(9 * MIB, [entry(0x83, MIB, 2 * MIB)])
    for number, image in images.items():
        start = (2 * number - 1) * MIB
        data[start:start + 2 * MIB] = image.read_bytes()
    path.write_bytes(bytes(data))
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(FIRMWARE), *args], capture_output=True, text=True)


def test_part_geometry_reads_primary_and_logical_partitions(tmp_path: Path) -> None:
    image = disk(tmp_path, AUTOBOOT.format(all=2, trial=3))
    got = {}
    for number in (1, 2, 3, 5, 6, 7):
        result = subprocess.run(
            ["bash", "-c", f'. "{REPO}/image/lib.sh"; part_geometry "$1" {number}', "-",
             str(image)], capture_output=True, text=True)
        got[number] = result.stdout.strip() if result.returncode == 0 else result.stderr.strip()
    assert got[1] == f"{MIB} {2 * MIB}"
    assert got[3] == f"{5 * MIB} {2 * MIB}"
    assert got[5] == f"{8 * MIB} {MIB}"
    assert got[6] == f"{10 * MIB} {2 * MIB}"
    assert got[7].endswith("no partition 7")


@pytest.mark.parametrize(("mode", "partition", "name"), [("normal", 2, "A"), ("tryboot", 3, "B")])
def test_boot_starts_the_partition_autoboot_names_for_the_flag(
        tmp_path: Path, mode: str, partition: int, name: str) -> None:
    image = disk(tmp_path, AUTOBOOT.format(all=2, trial=3))
    dts = tmp_path / "base.dts"
    dts.write_text("/dts-v1/;\n/ { chosen { bootargs = \"\"; }; };\n")
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(tmp_path / "base.dtb"),
                    str(dts)], check=True)
    out = tmp_path / "out"
    result = run("boot", str(image), mode, str(out), str(tmp_path / "base.dtb"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"partition {partition}\n"
    assert (out / "vmlinuz").read_bytes() == f"kernel of {name}".encode() + bytes(range(256))
    assert (out / "initrd.img").read_bytes() == f"initrd of {name}".encode()
    assert f"rauc.slot={name} " in (out / "cmdline.txt").read_text()

    def fdtget(prop: str) -> str:
        return subprocess.run(["fdtget", str(out / "firmware.dtb"), "/chosen/bootloader", prop],
                              capture_output=True, text=True, check=True).stdout.strip()

    assert fdtget("tryboot") == ("1" if mode == "tryboot" else "0")
    assert fdtget("partition") == str(partition)


def test_after_a_commit_every_normal_boot_starts_the_new_slot(tmp_path: Path) -> None:
    image = disk(tmp_path, AUTOBOOT.format(all=3, trial=2))
    assert run("boot", str(image), "normal", str(tmp_path / "n")).stdout == "partition 3\n"
    assert run("boot", str(image), "tryboot", str(tmp_path / "t")).stdout == "partition 2\n"
    assert not (tmp_path / "n/firmware.dtb").exists()  # no base device tree given


def test_a_tryboot_without_tryboot_a_b_reads_tryboot_txt(tmp_path: Path) -> None:
    image = disk(tmp_path, "[all]\nboot_partition=2\n[tryboot]\nboot_partition=3\n",
                 tryboot_txt=True)
    result = run("boot", str(image), "tryboot", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out/vmlinuz").read_bytes().startswith(b"kernel of B")
    # A normal boot reads config.txt, which here names no kernel on the card.
    result = run("boot", str(image), "normal", str(tmp_path / "normal"))
    assert result.returncode != 0
    assert "no none on partition 2" in result.stderr


def test_boot_refuses_a_card_without_autoboot_txt_or_a_boot_partition(tmp_path: Path) -> None:
    image = disk(tmp_path, "[all]\ntryboot_a_b=1\n")
    result = run("boot", str(image), "normal", str(tmp_path / "out"))
    assert result.returncode != 0
    assert "names no boot_partition for [all]" in result.stderr


MODULE_LINE = ("[   93.100] posterm_tryboot: restart with command '0 tryboot': no Raspberry Pi "
               "firmware (raspberrypi,bcm2835-firmware) to tell, not a Pi\n")


@pytest.mark.parametrize(("console", "flag"), [
    ("[  OK  ] Reached target reboot.target\n" + MODULE_LINE + "   93.120 reboot: Restarting "
     "system with command '0 tryboot'\n", "tryboot"),
    # Debian's kernel without the posterm-tryboot module: the command says tryboot, but nothing
    # told the firmware, which starts [all] as after any restart.
    ("[  OK  ] Reached target reboot.target\n   93.120 reboot: Restarting system with command "
     "'0 tryboot'\n", "reboot"),
    # The module's line for another command does not count.
    ("[   93.100] posterm_tryboot: restart with command '1 tryboot': no Raspberry Pi firmware\n"
     "   93.120 reboot: Restarting system with command '0 tryboot'\n", "reboot"),
    ("ab-boot: fell back from A\n  310.5 reboot: Restarting system\n", "reboot"),
    ("   51.2 reboot: Power down\n", "poweroff"),
    ("[   12.0] Kernel panic - not syncing: VFS: Unable to mount root fs\n", "hang"),
    ("", "hang"),
])
def test_flag_reads_how_the_boot_ended_from_the_console(tmp_path: Path, console: str,
                                                        flag: str) -> None:
    log = tmp_path / "serial.log"
    log.write_bytes(b"\x1b[0m\xff binary noise\n" + console.encode())
    result = run("flag", str(log))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{flag}\n"


def ab_run(tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """image/ab-boot-test.sh's host side end to end, against ab_guest_stub.sh for qemu: a small
    disk (partition 5 an ext4 with /etc/systemd/system, where the host breaks slot A), a bundle
    of noise, a CA of posterm-hq's."""
    image = disk(tmp, AUTOBOOT.format(all=2, trial=3))
    root = tmp / "root"
    (root / "etc/systemd/system").mkdir(parents=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", str(root), str(tmp / "p5.ext4"),
                    "1M"], check=True, capture_output=True)
    data = bytearray(image.read_bytes())
    part5 = (tmp / "p5.ext4").read_bytes()
    data[8 * MIB:8 * MIB + len(part5)] = part5
    image.write_bytes(bytes(data))
    (tmp / "posterm-os.raucb").write_bytes(b"\x00not a bundle" * 100)
    hq = REPO / ".venv/bin/posterm-hq"
    subprocess.run([str(hq), "ca", "init", str(tmp / "ca")], check=True, capture_output=True)
    stub = tmp / "stub"
    stub.mkdir()
    (stub / "qemu-system-aarch64").symlink_to(REPO / "tests/field/ab_guest_stub.sh")
    return subprocess.run(
        ["bash", str(REPO / "image/ab-boot-test.sh"), str(tmp / "ca"), str(image),
         str(tmp / "posterm-os.raucb")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": f"{stub}:{os.environ['PATH']}", "POSTERM_BUILD": str(tmp),
             "STUB_DIR": str(stub), "POSTERM_REPO": str(REPO), **env})


@pytest.mark.skipif(not (shutil.which("debugfs") and shutil.which("dtc")),
                    reason="e2fsprogs' debugfs and device-tree-compiler are missing")
def test_the_four_boots_follow_autoboot_txt_and_the_tryboot_flag(tmp_path: Path) -> None:
    result = ab_run(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "image ab-boot-test: PASS"
    assert "FAILED" not in result.stderr
    # The firmware stand-in's choices, each from the autoboot.txt the boot before left.
    assert [line.split(",")[0] for line in result.stdout.splitlines()[:4]] == [
        "boot 1: partition 2 normal", "boot 2: partition 3 tryboot",
        "boot 3: partition 2 tryboot", "boot 4: partition 3 normal"]
    assert "slot A's root (partition 5): posterm.service.d/ab-boot-test-broken.conf written" \
        in result.stderr


@pytest.mark.skipif(not (shutil.which("debugfs") and shutil.which("dtc")),
                    reason="e2fsprogs' debugfs and device-tree-compiler are missing")
def test_a_broken_slot_that_does_not_fall_back_fails_the_run(tmp_path: Path) -> None:
    result = ab_run(tmp_path, STUB_NO_FALLBACK="1")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].startswith("image ab-boot-test: FAIL")
    assert "FAILED: boot 3 got as far as its findings" in result.stderr
    assert "FAILED: ^end: reboot " in result.stderr


@pytest.mark.skipif(not (shutil.which("debugfs") and shutil.which("dtc")),
                    reason="e2fsprogs' debugfs and device-tree-compiler are missing")
def test_a_tryboot_restart_the_module_did_not_pass_on_fails_the_run(tmp_path: Path) -> None:
    """Without the posterm-tryboot module's line the stand-in restarts plainly, as a Pi's
    firmware would with Debian's kernel alone: boot 2 starts A again and the run fails."""
    result = ab_run(tmp_path, STUB_NO_MODULE="1")
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1].startswith("image ab-boot-test: FAIL")
    assert "no posterm_tryboot line: the firmware was not told, a plain restart" in result.stderr
    assert "boot 2: the firmware starts partition 2 normal" in result.stderr
