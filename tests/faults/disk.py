"""A small file system to fill: a loop-mounted ext4 image (real fsync, real ENOSPC), else a
tmpfs with ``size=``. Both need root; the suite skips without it."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

CHUNK = 64 * 1024


def _mount(image: Path, mount: Path, megabytes: int) -> str:
    with image.open("wb") as handle:
        handle.truncate(megabytes * 1024 * 1024)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], capture_output=True)
    if made.returncode == 0 and subprocess.run(
            ["mount", "-o", "loop", str(image), str(mount)], capture_output=True).returncode == 0:
        return "loop-mounted ext4"
    tmpfs = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs",
                            str(mount)], capture_output=True)
    if tmpfs.returncode == 0:
        return "tmpfs size-limited"
    pytest.skip(f"cannot mount a small file system here: {tmpfs.stderr.decode().strip()}")


@contextlib.contextmanager
def small_disk(directory: Path, megabytes: int = 24) -> Iterator[tuple[Path, str]]:
    """A mounted file system of ``megabytes``: (its mount point, what kind it is)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mount = directory / "disk"
    mount.mkdir(parents=True)
    kind = _mount(directory / "disk.img", mount, megabytes)
    try:
        yield mount, kind
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> int:
    """Write ``path`` until the file system is full; the bytes written."""
    written = 0
    block = b"\0" * CHUNK
    with path.open("wb", buffering=0) as handle:
        try:
            while True:
                written += handle.write(block)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            os.fsync(handle.fileno())
    return written
