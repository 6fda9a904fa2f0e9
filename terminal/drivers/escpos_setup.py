"""python-escpos needs a folder for its capabilities cache before it is first imported.

At import it parses a 1 MB YAML printer database unless it finds its pickle in
``ESCPOS_CAPABILITIES_PICKLE_DIR``; a folder that does not exist makes that import fail with
FileNotFoundError, which once looked like an unplugged printer. So the folder is made here (the
systemd unit's CacheDirectory, the setup script's ``var/escpos-cache``, or the user's cache), and if
it cannot be, a private temporary one is used and the reason logged: printing never depends on it.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

ENV = "ESCPOS_CAPABILITIES_PICKLE_DIR"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "posterm" / "escpos"


@functools.cache
def prepare_escpos() -> Path:
    """Make the capabilities cache folder exist (once a process); returns the folder used."""
    folder = Path(os.environ.get(ENV) or default_cache_dir())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(f"{folder} is not writable")
    except OSError as exc:
        fallback = Path(tempfile.mkdtemp(prefix="posterm-escpos-"))
        log.warning("printer library cache %s unusable (%s); using %s", folder, exc, fallback)
        folder = fallback
    os.environ[ENV] = str(folder)
    return folder
