"""Replacing a file so that a reader or a power cut sees the old content or the new, never half.

One way for everything the terminal and HQ rewrite in place: provisioned credentials and config,
the update's trial record, the broker's ACL and register.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, content: bytes | str, mode: int | None = None,
                 owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``content``: a temporary file beside it, written and fsynced, renamed
    over the old one, then the directory fsynced. ``mode`` defaults to the existing file's (a
    reader such as the broker must keep its access), else 0644; ``owner`` is (uid, gid)."""
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o644
    data = content.encode() if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with contextlib.closing(os.fdopen(fd, "wb")) as out:
            os.fchmod(fd, mode)
            if owner is not None:
                os.fchown(fd, *owner)
            out.write(data)
            out.flush()
            os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
