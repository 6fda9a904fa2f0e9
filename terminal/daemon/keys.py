"""The terminal's two secrets as start-up reads them: the chain's card key (provisioned) and the
terminal's own PIN key (made on first start). Kept apart from :mod:`.bootstrap` so that a command
needing only them (``posterm operator``) does not import the devices."""

from __future__ import annotations

import logging
from pathlib import Path

from terminal.core.atomic import write_atomic
from terminal.loyalty.store.operators import new_pin_key

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The terminal cannot start; the message says what to fix."""


def _read_secret(path: Path, what: str, minimum: int) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise StartupError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    if len(key) < minimum:
        raise StartupError(f"{path}: the {what} must be at least {minimum} bytes")
    return key


def read_card_key(path: Path) -> bytes:
    return _read_secret(path, "card key", 16)


def read_pin_key(path: Path) -> bytes:
    """The terminal's own secret for operators' PIN hashes, made on first start (0600, beside
    the terminal's other credentials)."""
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, new_pin_key(), 0o600)
        except OSError as exc:
            raise StartupError(f"{path}: cannot make the PIN key: {exc.strerror}") from None
        log.info("%s: a new PIN key for this terminal", path)
    return _read_secret(path, "PIN key", 32)
