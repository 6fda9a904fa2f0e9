"""Cheap consistency checks of the image route (the build itself is image/ci-check.sh): labels
agree between config and fstab, every installable unit is enabled, the scripts parse."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE = REPO / "image"
SCRIPTS = sorted(IMAGE.glob("*.sh")) + sorted(IMAGE.glob("pi-gen-stage/**/*.sh"))


def config_value(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)", (IMAGE / "config").read_text(), re.MULTILINE)
    assert match, f"{name} missing from image/config"
    return match.group(1)


def test_fstab_mounts_the_partitions_by_the_labels_genimage_writes() -> None:
    fstab = {
        fields[1]: fields[0]
        for line in (IMAGE / "filesystem/etc/fstab").read_text().splitlines()
        if line and not line.startswith("#") and (fields := line.split())
    }
    assert fstab == {  # the root is slot A or B, from the kernel command line
        "/boot/firmware": f"LABEL={config_value('POSTERM_BOOT_LABEL')}",
        "/var": f"LABEL={config_value('POSTERM_DATA_LABEL')}",
    }
    assert len(config_value("POSTERM_BOOT_LABEL")) <= 11  # the most a FAT volume label holds


def test_every_installable_unit_is_enabled_in_the_image() -> None:
    script = (IMAGE / "chroot-script.sh").read_text()
    installable = [
        unit.name
        for unit in sorted((REPO / "systemd").iterdir())
        if unit.is_file() and "[Install]" in unit.read_text()
    ]
    assert installable
    enable = script[script.index("systemctl enable") :]
    for name in installable:
        assert name in enable, f"{name} has an [Install] section but the image does not enable it"


@pytest.mark.parametrize("script", SCRIPTS, ids=[str(s.relative_to(IMAGE)) for s in SCRIPTS])
def test_script_parses_and_stops_on_errors(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    if script.name != "lib.sh":  # sourced by the others, which set the options
        assert "set -euo pipefail" in text or text.startswith("#!/bin/bash -e"), script
