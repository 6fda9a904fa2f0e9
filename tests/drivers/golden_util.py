"""Golden files: compare, or rewrite them with POSTERM_UPDATE_GOLDEN=1 after a deliberate change."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageChops

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("POSTERM_UPDATE_GOLDEN") == "1"


def check_bytes(name: str, actual: bytes) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.write_bytes(actual)
    assert path.exists(), f"missing golden {path}; run with POSTERM_UPDATE_GOLDEN=1 once"
    assert actual == path.read_bytes(), f"{name} differs from its golden"


def check_image(name: str, actual: Image.Image) -> None:
    path = GOLDEN / name
    if UPDATE:
        actual.save(path, format="PNG")
    assert path.exists(), f"missing golden {path}; run with POSTERM_UPDATE_GOLDEN=1 once"
    with Image.open(path) as expected:
        assert expected.size == actual.size
        assert ImageChops.difference(expected.convert("RGB"), actual.convert("RGB")).getbbox() \
            is None, f"{name} differs from its golden"
